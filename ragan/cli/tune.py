"""``ragan tune MODEL --data DIR --out DIR``: hyperparameter search (thin wrapper of :func:`ragan.tune`).

``ragan tune MODEL --help`` shows MODEL's search space (the declared ranges): the ``configure``
hook adds it to the help once it knows MODEL. The space is changed by a YAML/JSON ``--search``
file, then by ``--set NAME=VALUE`` (fix), ``--range NAME=LOW,HIGH[,log]`` and
``--choices NAME=A,B,...``; the flags win over the file. Re-running the same command resumes a
killed study. Distributed: set ``KERASTUNER_TUNER_ID`` (``chief`` / ``tuner0`` / ...),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` and run the same command in every process.
"""

from __future__ import annotations

import argparse
import json

from ragan.cli.common import model_word

# Flags that take no value (everything else takes one); used to find MODEL among the words.
_SWITCHES = {"-h", "--help", "--overwrite", "--dry-run", "-q", "--quiet", "-v", "--verbose", "-vv"}
_MULTI_VALUE = {"--set", "--range", "--choices", "--tuner-option"}

DESCRIPTION = """\
Search MODEL's hyperparameters on a prepared dataset with KerasTuner. Every trial trains with
'ragan train' settings into OUT/trials/<id>/ and is an MLflow run (a child of the study's run);
the objective (KID by default, lower is better) compares the trial's generator with the
held-out real images (split 'val', else 'test'). A diverged trial is recorded as failed and
the search goes on. The best generator is exported to OUT/best ('ragan generate OUT/best');
OUT/trials.csv|md|png summarise the trials. Re-run the same command to resume a killed study.
"""

EXAMPLES = """\
examples:
  ragan tune dcgan --data prepared --out studies/dcgan --max-trials 20 --kimg-per-trial 50
  ragan tune wgan_gp --data prepared --out studies/wgan --tuner hyperband --max-kimg 200 \\
      --set latent_dim=128 --range gp_weight=5,15 --choices d_steps=3,5
  ragan tune dcgan --data prepared --out studies/b --tuner bayesian --search search.yaml
"""


# Changes to the search space after --search, in the order they apply.
SEARCH_FLAGS = (
    (
        "--set",
        "NAME=VALUE",
        "fix hyperparameters or training options, e.g. --set latent_dim=64 batch_size=32 (on top of --search)",
    ),
    ("--range", "NAME=LOW,HIGH[,log]", "search NAME between LOW and HIGH (linear, or log/reverse_log sampling)"),
    ("--choices", "NAME=A,B,...", "search NAME over these values"),
)


def register(subparsers):
    parser = subparsers.add_parser(
        "tune",
        help="Search a GAN's hyperparameters (random, Bayesian, Hyperband); trials are MLflow runs.",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="a registered GAN (see 'ragan hparams'), e.g. dcgan")
    parser.add_argument(
        "--data", required=True, help="prepared dataset directory (train split trains, val/test scores)"
    )
    parser.add_argument("--out", required=True, help="study directory (new, or the study to resume)")
    for flag, metavar, help_text in SEARCH_FLAGS:
        parser.add_argument(flag, action="append", nargs="+", default=[], metavar=metavar, help=help_text)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved study (search space, budget) as JSON and exit"
    )
    parser.set_defaults(func=run)
    return parser


def configure(parser, argv):
    """The options (:class:`~ragan.tuning.config.TuneConfig`), and MODEL's search space in its ``--help``."""
    from ragan.tuning.config import TuneConfig

    TuneConfig.add_arguments(parser, title="study options")
    name = model_word(argv, _SWITCHES, multi_value=_MULTI_VALUE)
    if name is None:
        return
    from ragan.tuning.hypermodel import describe_declared

    parser.epilog = describe_declared(name) + "\n\n" + EXAMPLES


def _pairs(groups: list[list[str]], flag: str) -> list[tuple[str, str]]:
    from ragan.errors import RaganError

    pairs = []
    for word in (w for group in groups for w in group):
        name, sep, value = word.partition("=")
        if not sep or not name.strip():
            raise RaganError(f"{flag} {word!r}: write NAME=VALUE, e.g. {flag} latent_dim=64.")
        pairs.append((name.strip(), value.strip()))
    return pairs


def search_from_args(args, search=None) -> dict:
    """The search specification: ``search`` (a mapping or a file), then ``--set``/``--range``/``--choices``.

    Example:
        >>> from ragan.cli.main import build_parser
        >>> argv = ["tune", "dcgan", "--data", "d", "--out", "o", "--range", "g_learning_rate=1e-5,1e-3,log"]
        >>> search_from_args(build_parser(argv).parse_args(argv))
        {'g_learning_rate': {'min': '1e-5', 'max': '1e-3', 'sampling': 'log'}}
    """
    from ragan.errors import RaganError
    from ragan.tuning.hypermodel import load_search_file

    if search is None and getattr(args, "hp_search", None):
        search = args.hp_search
    spec = dict(load_search_file(search) if isinstance(search, str) else search or {})
    for name, value in _pairs(args.set, "--set"):
        spec[name] = value
    for name, value in _pairs(args.range, "--range"):
        parts = [p.strip() for p in value.split(",")]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise RaganError(f"--range {name}={value!r}: write NAME=LOW,HIGH or NAME=LOW,HIGH,log.")
        entry = {"min": parts[0], "max": parts[1]}
        if len(parts) == 3:
            entry["sampling"] = parts[2]
        spec[name] = entry
    for name, value in _pairs(args.choices, "--choices"):
        values = [p.strip() for p in value.split(",") if p.strip()]
        if not values:
            raise RaganError(f"--choices {name}={value!r}: give at least one value, e.g. {name}=a,b.")
        spec[name] = {"choices": values}
    return spec


def run(args) -> int:
    from ragan.tuning.config import TuneConfig
    from ragan.tuning.tuner import plan_study, tune

    config = TuneConfig.from_cli(args)
    if args.set or args.range or args.choices:
        config = config.replace(search=search_from_args(args, config.search))
    if args.dry_run:
        print(json.dumps(plan_study(args.model, args.data, args.out, config=config).describe(), indent=2, default=str))
        return 0
    result = tune(args.model, args.data, args.out, config=config)
    if args.quiet:
        print("\n".join(result.summary()))
    return 0
