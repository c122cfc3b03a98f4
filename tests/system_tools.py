"""System programs some tests need (chromium, buildah, ...): found, installed in CI, or skipped."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

LOCK_FILE = Path(tempfile.gettempdir()) / "ragan-tests-apt-get.lock"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def ensure_system_tools(tools: dict[str, str]) -> None:
    """Make the programs ``{program: debian_package}`` available, or skip the test saying how.

    Where one is missing and ``CI`` is set, running as root with apt-get (the CI machine), the
    packages are installed with apt-get, so that CI runs these tests rather than skipping them;
    elsewhere (a user's or developer's machine) nothing is installed behind their back.
    """
    missing = [program for program in tools if shutil.which(program) is None]
    if not missing:
        return
    packages = sorted({tools[program] for program in missing})
    can_install = _truthy(os.environ.get("CI")) and shutil.which("apt-get") is not None and os.geteuid() == 0
    if not can_install:
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install {' '.join(packages)}; with CI set, "
            "as root on Debian/Ubuntu, the tests install it themselves)"
        )
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # One apt-get at a time: with `pytest -n 2` two workers can need a tool at once, and the second
    # apt-get would fail on dpkg's lock instead of waiting for it (or find the tool installed).
    with open(LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(shutil.which(program) for program in missing):
            return
        # A failing third-party source must not stop the update of Debian's own lists.
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=600, env=environment)
        result = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *packages],
            capture_output=True,
            text=True,
            timeout=900,
            env=environment,
        )
    still_missing = [program for program in missing if shutil.which(program) is None]
    if result.returncode != 0 or still_missing:
        pytest.fail(f"apt-get install {' '.join(packages)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
