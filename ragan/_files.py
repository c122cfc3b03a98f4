"""File-system helpers shared by the stages that write a folder of outputs: atomic publishing, a
lock on an output being written, and the check that a written path stays inside its folder."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OLD_SUFFIX", "PartialLock", "build_then_publish", "path_inside", "publish_directory"]

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


def path_inside(root: str | os.PathLike, *parts: str, action: str = "write") -> Path:
    """``root / parts``, refused unless it resolves inside ``root`` (symbolic links followed).

    Every file ragan writes under an output folder from a name that came from data (a class
    name, a split name) is made with this, so no name can place a file outside the folder.

    Args:
        root: the output folder (it may not exist yet).
        parts: path components below it.
        action: what is refused, for the message (``"write"``, ``"read"``).

    Raises:
        RaganError: the path leaves ``root`` (a ``..``, an absolute part, a link out of it).

    Example:
        >>> path_inside("out", "pneumonia", "synthetic-000001.png").as_posix()
        'out/pneumonia/synthetic-000001.png'
    """
    from ragan.errors import RaganError

    base = Path(root)
    path = base.joinpath(*parts)
    real_base = os.path.realpath(base)
    real = os.path.realpath(path)
    if os.path.commonpath([real_base, real]) != real_base or any(p in ("", ".", "..") for p in parts):
        shown = "/".join(parts)
        raise RaganError(f"refused to {action} {shown!r}: it is not inside the folder '{base}'.")
    return path


class PartialLock:
    """An exclusive lock on a stage's output folder while it is written (a ``flock`` on the folder
    itself, so no lock file is left behind): a second ``ragan prepare``, ``generate``, ``train`` or
    ``evaluate`` writing the same output stops with one line instead of deleting the first one's
    work. Without ``fcntl`` (Windows) or on a file system without locks, nothing is locked.

    Example:
        >>> with PartialLock(Path("out.partial"), "generate") as lock:
        ...     lock.clear()   # leftovers of an interrupted run: no other run holds the folder
    """

    def __init__(self, directory: Path, stage: str):
        self.directory, self.stage = Path(directory), stage
        self._fd: int | None = None

    def __enter__(self) -> PartialLock:
        return self.acquire()

    def acquire(self) -> PartialLock:
        """Create the folder if needed and lock it (a RaganError when another process holds it)."""
        from ragan.errors import RaganError

        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent runs are the user's business
            return self
        try:
            self._fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return self
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(self._fd)
            self._fd = None
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RaganError(
                    f"another 'ragan {self.stage}' is writing '{self.directory}'; wait for it to finish "
                    "or choose another output."
                ) from None
        return self

    def clear(self) -> None:
        """Delete what the folder holds (not the folder: the lock is on it)."""
        for child in self.directory.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    def release(self) -> None:
        """Unlock (the folder may have been renamed or deleted meanwhile); safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


@contextlib.contextmanager
def build_then_publish(partial: Path, out: Path, stage: str) -> Iterator[Path]:
    """Write a stage's output into ``partial`` under its lock, then publish it as ``out``.

    ``partial`` is locked (a second run of ``stage`` into the same ``out`` stops with a one-line
    error instead of deleting this one's work), emptied of what an interrupted run left behind and
    handed to the block; once the block completes it is renamed to ``out``, and if the block
    fails it is deleted.
    """
    lock = PartialLock(partial, stage).acquire()
    try:
        lock.clear()
        try:
            yield partial
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        publish_directory(partial, out)
    finally:
        lock.release()
