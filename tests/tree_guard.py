"""The working tree must not gain files while the tests run.

A docstring example or a test that writes into the checkout (as one once wrote a 90 MB
``studies/dcgan`` that was then committed) leaves an entry in ``git status``. The root
``conftest.py`` takes :func:`snapshot` when the session starts and fails the session at its end
when :func:`new_entries` finds any, naming them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# Caches that tools write on purpose, and the virtual environment the README's commands create.
EXPECTED = (".venv/", ".pytest_cache/", ".ruff_cache/", "__pycache__/", ".egg-info/", ".hypothesis/")


def snapshot(root: Path) -> set[str] | None:
    """The untracked and ignored entries of ``root``'s work tree, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    entries = set()
    for line in result.stdout.splitlines():
        status, path = line[:2], line[3:]
        if status in ("??", "!!") and not any(part in path for part in EXPECTED):
            entries.add(path)
    return entries


def new_entries(before: set[str] | None, after: set[str] | None) -> list[str]:
    """Entries in ``after`` that were not in ``before`` (none when either snapshot failed)."""
    if before is None or after is None:
        return []
    return sorted(after - before)
