"""Messages and progress bars of every stage: the ``ragan`` logger, and tqdm bars that follow its level.

Every module reports through ``logging.getLogger(__name__)``, a child of the ``ragan`` logger:
``INFO`` says what a stage is doing (``read 400 real training images``, a training tick), ``WARNING``
a problem that does not stop it (MLflow unreachable), ``DEBUG`` details (each skipped file). The
progress bars (:func:`progress_bar`) show while ``INFO`` does.

Like MLflow's own logger, ``ragan`` has a handler of its own and does not propagate: out of the box
``INFO`` lines go to stdout as ``ragan: MESSAGE`` and warnings to stderr as ``ragan: warning:
MESSAGE``, in a terminal, a notebook or a batch job's log. The ``ragan`` command sets the level
(``-q``: warnings only, ``-v``: details too); a stage function called with ``progress=False`` shows
warnings only (:func:`stage_output`). A program that handles logging itself takes the messages over::

    import logging
    logger = logging.getLogger("ragan")
    logger.handlers.clear(); logger.propagate = True      # ragan's records go to your handlers
    logger.setLevel(logging.WARNING)                      # or: no progress messages at all

This is a package-internal seam: other ragan modules import its names.

Example:
    >>> import logging
    >>> logging.getLogger("ragan.data").info("read 3 files")   # doctest: +SKIP
    ragan: read 3 files
    >>> with stage_output(progress=False):
    ...     bars_enabled()
    False
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

__all__ = ["LOGGER", "bars_enabled", "install", "progress_bar", "stage_output", "verbosity"]

LOGGER = logging.getLogger("ragan")


class _Handler(logging.Handler):
    """``ragan: MESSAGE`` on stdout below WARNING, ``ragan: warning: MESSAGE`` (``error:``) on stderr.

    The streams are looked up for every record, so redirecting ``sys.stdout`` (pytest, notebooks)
    takes the messages along.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.levelno >= logging.ERROR:
                text, stream = f"ragan: error: {message}", sys.stderr
            elif record.levelno >= logging.WARNING:
                text, stream = f"ragan: warning: {message}", sys.stderr
            else:
                text, stream = f"ragan: {message}", sys.stdout
            stream.write(text + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)


def install() -> None:
    """Give the ``ragan`` logger its handler (once) and the ``INFO`` level; called by ``import ragan``."""
    if not any(isinstance(handler, _Handler) for handler in LOGGER.handlers):
        LOGGER.addHandler(_Handler())
        LOGGER.propagate = False
        if LOGGER.level == logging.NOTSET:
            LOGGER.setLevel(logging.INFO)


@contextlib.contextmanager
def verbosity(level: int) -> Iterator[None]:
    """The command line's ``-q`` (``-1``: warnings only), nothing (``0``: progress) or ``-v`` (``1``: details)
    inside the block; the level before it afterwards (``main()`` may run several times in one process)."""
    install()
    previous = LOGGER.level
    LOGGER.setLevel(logging.WARNING if level < 0 else logging.DEBUG if level > 0 else logging.INFO)
    try:
        yield
    finally:
        LOGGER.setLevel(previous)


@contextlib.contextmanager
def stage_output(progress: bool = True) -> Iterator[None]:
    """Inside the block, ``progress=False`` shows warnings only; ``True`` leaves the level as it is."""
    if progress:
        yield
        return
    previous = LOGGER.level
    LOGGER.setLevel(max(logging.WARNING, LOGGER.getEffectiveLevel()))
    try:
        yield
    finally:
        LOGGER.setLevel(previous)


def bars_enabled() -> bool:
    """Whether progress bars show: while the ``ragan`` logger shows ``INFO``."""
    return LOGGER.isEnabledFor(logging.INFO)


def progress_bar(iterable=None, *, total=None, desc: str, unit: str = "it", leave: bool = False, **options):
    """A tqdm bar on stderr that shows while ``INFO`` messages do (see :func:`bars_enabled`)."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable, total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr, disable=not bars_enabled(), **options
    )
