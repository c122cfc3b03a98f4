"""File-system helpers shared by the stages that write a folder of outputs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["OLD_SUFFIX", "publish_directory"]

OLD_SUFFIX = ".ragan-old"


def publish_directory(partial: Path, out: Path) -> None:
    """Rename the finished ``partial`` folder to ``out``.

    An existing ``out`` is moved aside first and deleted only once the new one is in place, so an
    interruption leaves either the old output or the new one, never a mixture or nothing.
    """
    partial, out = Path(partial), Path(out)
    if out.exists():
        old = out.parent / f".{out.name}{OLD_SUFFIX}"
        if old.exists():
            shutil.rmtree(old)
        os.rename(out, old)
        os.rename(partial, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rename(partial, out)
