"""Stopping on SIGTERM / SIGINT without losing work or publishing half an output.

Clusters end jobs with SIGTERM (and SIGKILL after a grace period); users press Ctrl-C (SIGINT).
:func:`handle_signals` turns both into one of two behaviours while a block runs:

* ``graceful=False`` (every CLI stage): the handler raises :class:`Interrupted` in the main thread
  at once. It is a ``KeyboardInterrupt``, so the stages' existing clean-up (``except BaseException``:
  delete the partial folder) runs and nothing half-written is published; the same command
  afterwards starts again (or resumes, where the stage supports it).
* ``graceful=True`` (the training loop): the handler only records the signal; the loop asks
  :func:`stop_requested` after every step, finishes the step, checkpoints, and raises
  :class:`Interrupted` itself. A second signal while the first is being handled raises at once.

The CLI turns :class:`Interrupted` into one line on stderr and exit status ``128 + signal``
(143 for SIGTERM, 130 for SIGINT), as shells and Slurm expect. Outside the main thread (where
Python cannot install handlers) :func:`handle_signals` changes nothing.

Example (a loop that stops cleanly on SIGTERM/SIGINT; here no signal arrives):
    >>> done = []
    >>> with handle_signals(graceful=True):
    ...     for step in range(3):
    ...         done.append(step)  # one training step
    ...         if stop_requested():  # checkpoint here, then stop
    ...             raise Interrupted(stop_requested(), "checkpointed; resume with --resume")
    >>> done
    [0, 1, 2]
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Interrupted", "handle_signals", "stop_requested", "signal_name", "SIGNALS"]

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def signal_name(signum: int) -> str:
    """``'SIGTERM'`` for 15, and so on."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM, SIGINT).

    Args:
        signum: the signal received.
        message: one line for the user (what was kept, how to continue); empty for the default.

    Attributes:
        exit_status: ``128 + signum``, the status a shell reports for a process ended by it.
    """

    def __init__(self, signum: int = signal.SIGINT, message: str = ""):
        self.signum = int(signum)
        self.message = message or f"interrupted by {signal_name(self.signum)}"
        super().__init__(self.message)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class _State:
    graceful = False
    pending: int | None = None


_state = _State()


def stop_requested() -> int | None:
    """The signal received while a graceful :func:`handle_signals` block runs, else ``None``."""
    return _state.pending


def _handler(signum, frame):  # noqa: ARG001 - the signal module's signature
    if _state.graceful and _state.pending is None:
        _state.pending = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handle_signals(graceful: bool = False):
    """Handle SIGTERM and SIGINT as described in the module docstring while the block runs.

    Blocks nest: the previous handlers, mode and pending signal come back afterwards (a signal
    recorded by an inner graceful block that ended normally is dropped: the work it guarded is
    complete).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved_handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}
    saved_mode = (_state.graceful, _state.pending)
    _state.graceful, _state.pending = graceful, None
    for signum in SIGNALS:
        signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in saved_handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        _state.graceful, _state.pending = saved_mode
