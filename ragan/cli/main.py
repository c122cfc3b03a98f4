"""The ``ragan`` console script: one module per subcommand, each calling one library function.

A subcommand module defines ``register(subparsers)`` (adds its parser and sets ``func``) and may
define ``configure(parser, argv)``, called before parsing, to add flags that depend on earlier
words (``ragan train wgan_gp --help`` lists WGAN-GP's hyperparameters).
Errors caused by the user print as one line and exit with status 2. SIGINT (Ctrl-C) and SIGTERM
(a cluster ending the job) print one line and exit with 130 / 143: every stage publishes its output
folder only when complete, and ``ragan train`` first checkpoints the step it was in (see
:mod:`ragan._interrupt`).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from ragan._common import first_line
from ragan._interrupt import Interrupted, handle_signals
from ragan._logging import verbosity
from ragan._version import __version__
from ragan.errors import RaganError

SUBCOMMANDS = ("demo", "prepare", "hparams", "train", "generate", "evaluate", "mix", "tune", "import-weights", "docker")


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints usage + error on two lines; users asked for one clean line."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _available_modules():
    modules = {}
    for name in SUBCOMMANDS:
        try:
            modules[name] = importlib.import_module(f"ragan.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as error:
            # A subcommand whose module is not present yet in this build is simply not offered.
            if error.name != f"ragan.cli.{name.replace('-', '_')}":
                raise
    return modules


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="ragan",
        description="ragan: GAN data augmentation for medical images "
        "(prepare -> train -> tune -> generate -> evaluate).",
    )
    parser.add_argument("--version", action="version", version=f"ragan {__version__}")
    parser.add_argument(
        "--import",
        dest="plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module or .py file that registers your own GAN (repeatable; also the "
        "RAGAN_PLUGINS environment variable, comma-separated)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    subparsers.required = True
    for name, module in _available_modules().items():
        sub = module.register(subparsers)
        _add_verbosity(sub)
        if argv is not None and hasattr(module, "configure") and argv and argv[0] == name:
            module.configure(sub, argv[1:])
    return parser


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-q``/``-v`` of every subcommand: the level of the ``ragan`` logger (see :mod:`ragan._logging`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q", "--quiet", action="store_true", help="warnings and errors only: no progress messages or bars"
    )
    group.add_argument("-v", "--verbose", action="count", default=0, help="also details (e.g. each skipped file)")


def _import_plugins(argv: list[str]) -> list[str]:
    """Handle leading ``--import MODULE`` options before the subcommand's parser is built,
    because subcommands look GAN names up while building their flags. The modules are also
    added to ``RAGAN_PLUGINS`` so that child processes (workers) import them too."""
    import os

    from ragan.registry import PLUGINS_ENV, load_plugins

    plugins = []
    rest = list(argv)
    while rest and (rest[0] == "--import" or rest[0].startswith("--import=")):
        option = rest.pop(0)
        if option == "--import":
            if not rest:
                raise RaganError("--import needs a module name or .py file.")
            plugins.append(rest.pop(0))
        else:
            plugins.append(option.split("=", 1)[1])
    if plugins:
        load_plugins(plugins)
        existing = [p for p in os.environ.get(PLUGINS_ENV, "").split(",") if p]
        resolved = [str(os.path.abspath(p)) if p.endswith(".py") else p for p in plugins]
        os.environ[PLUGINS_ENV] = ",".join(dict.fromkeys(existing + resolved))
    return rest


_DISK_FULL = re.compile(r"No space left on device|File too large|Disk quota exceeded", re.IGNORECASE)


def _output_of(argv: list[str]) -> str:
    """The ``--out`` of the command line (every stage that writes has one), or ``""``."""
    for index, word in enumerate(argv):
        if word == "--out" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--out="):
            return word.split("=", 1)[1]
    return ""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ragan`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with handle_signals():
            argv = _import_plugins(argv)
            parser = build_parser(argv)
            args = parser.parse_args(argv)
            with verbosity(-1 if args.quiet else args.verbose):
                result = args.func(args)
        return int(result or 0)
    except RaganError as error:
        print(f"ragan: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # The file system said no (an output folder that cannot be written, a disk that is full):
        # the user's problem to fix, so one line naming the path, not a traceback. A failed write()
        # does not say which file it was; then the output being written is named.
        where = error.filename if error.filename is not None else _output_of(argv)
        print(
            f"ragan: error: {where}: {error.strerror or error}" if where else f"ragan: error: {error}", file=sys.stderr
        )
        return 2
    except Exception as error:
        # TensorFlow's file writers (TFRecord shards) report a full disk as an OpError whose
        # message is "PATH; No space left on device" (or "File too large" under a size limit).
        message = str(getattr(error, "message", "") or error).strip()
        if type(error).__module__.startswith("tensorflow") and _DISK_FULL.search(message):
            print(f"ragan: error: {first_line(message)}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt as error:
        if isinstance(error, Interrupted) and error.message.startswith("SIG"):
            # ragan train checkpointed and says how to continue.
            print(f"ragan: {error.message}", file=sys.stderr, flush=True)
            return error.exit_status
        # A training run continues only when asked to (an existing run folder is refused without
        # --resume); the other stages publish nothing partial and pick up their work when re-run.
        how = "re-run it with --resume" if argv[:1] == ["train"] else "re-run the same command"
        why = error.message if isinstance(error, Interrupted) else "interrupted"
        print(f"ragan: {why}; {how} to continue.", file=sys.stderr, flush=True)
        return error.exit_status if isinstance(error, Interrupted) else 130


def entry_point() -> None:  # console_scripts target
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
