"""Running ``ragan`` in the tests, and the tiny training settings they share (one place for both).

* :func:`run_cli` runs ``python -m ragan ARGS`` in a fresh process (what a user types);
  :func:`ragan_command` is its command line, for tests that start and signal the process themselves.
* :func:`run_main` runs :func:`ragan.cli.main.main` in this process and returns its captured output.
* :func:`one_line_error` checks the promise every stage makes about bad input.
* ``TINY_MODEL`` / ``TINY_TRAINING`` (and :func:`flags` for the command line): a DCGAN and a run short
  enough for a test; ``TINY_FLAGS`` is both as flags.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: A conditional DCGAN that trains a step in well under a second on a CPU (16-32 px images).
TINY_MODEL = {"latent_dim": 16, "base_filters": 8, "conditional": True}
#: Training options of a test run: a tick and a checkpoint every 2 steps, no sample grids in between.
TINY_TRAINING = {"batch_size": 8, "log_every": 2, "checkpoint_every": 2, "sample_every": 1000}


def flags(options: dict) -> list[str]:
    """``{"latent_dim": 16, "conditional": True}`` -> ``["--latent-dim", "16", "--conditional", "true"]``."""
    words = []
    for name, value in options.items():
        words += [f"--{name.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return words


TINY_FLAGS = flags({**TINY_MODEL, **TINY_TRAINING})


def ragan_command(*args) -> list[str]:
    """The command line of ``python -m ragan ARGS`` (arguments turned into strings)."""
    return [sys.executable, "-m", "ragan", *map(str, args)]


def run_cli(*args, timeout: float = 900, cwd=REPO, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m ragan ARGS`` from the repository folder; stdout and stderr captured as text.

    The timeout is the suite's own (``pytest.ini``): it only ends a command that hangs.
    """
    return subprocess.run(ragan_command(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, **kwargs)


def run_main(argv, capsys) -> tuple[int, str, str]:
    """``ragan ARGV`` in this process: ``(exit status, stdout, stderr)``."""
    from ragan.cli.main import main

    code = main([str(word) for word in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error line of a run that failed on bad input: exit status 2, one line, no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "error:" in lines[0], lines[0]
    return lines[0]
