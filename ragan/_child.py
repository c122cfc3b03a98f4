"""Run one function in a fresh child process, so that the memory it used goes back to the system.

TensorFlow's CPU allocator (oneDNN's, a BFC pool) keeps the peak working set of a training run for
the life of the process: after the classifier study at 256 px, about 2 GB stay resident that the
later stages of ``evaluate`` never use. Run in a child, that memory is returned when the child
exits. :func:`run_in_child` starts the child with ``spawn`` (never ``fork``: the parent may hold
TensorFlow's threads), forwards its log records to the parent's ``ragan`` logger (so ``-q``, ``-v``
and a program's own logging handlers apply), and returns its result or raises its error.

* A :class:`~ragan.errors.RaganError` in the child is raised as it is (one line for the user).
* A child that dies without answering (the out-of-memory killer, a crash) is one
  :class:`~ragan.errors.RaganError` naming the exit status.
* An interrupt in the parent (Ctrl-C, SIGTERM) ends the child first; a parent killed outright is
  noticed by the child within a second (see :func:`ragan.data.decoding.watch_parent`).

This is a package-internal seam.

Example:
    >>> run_in_child(pow, 2, 10, what="a power")  # doctest: +SKIP
    1024
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import traceback
import types

from ragan._logging import LOGGER
from ragan.errors import RaganError

__all__ = ["HiddenMainModule", "run_in_child"]

# How long a child that has answered may take to exit, and an interrupted one after SIGTERM,
# before it is ended (SIGTERM) or killed.
_EXIT_SECONDS = 60.0
_TERMINATE_SECONDS = 10.0


class HiddenMainModule:
    """Hide the caller's ``__main__`` module while child processes start (a few microseconds).

    ``spawn`` and ``forkserver`` children normally re-import the parent's main script. They need
    nothing from it (they run a function of ragan's), and a script that calls a stage without an
    ``if __name__ == "__main__":`` guard would otherwise run again in every child (and hang). A
    stand-in module without a file or spec makes multiprocessing skip that step.
    """

    def __enter__(self):
        self._saved = sys.modules.get("__main__")
        stand_in = types.ModuleType("__main__")
        sys.modules["__main__"] = stand_in
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            sys.modules["__main__"] = self._saved
        return False


class _SendHandler(logging.Handler):
    """In the child: each record, its message formatted, sent to the parent."""

    def __init__(self, connection):
        super().__init__()
        self.connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args, record.exc_info, record.exc_text = record.getMessage(), None, None, None
            self.connection.send(("log", record))
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)


def _child_main(connection, parent_pid: int, level: int, function, args, kwargs) -> None:
    from ragan.data.decoding import watch_parent

    watch_parent(parent_pid)
    handler = _SendHandler(connection)
    LOGGER.handlers[:] = [handler]
    LOGGER.propagate = False
    LOGGER.setLevel(level)
    try:
        message = ("result", function(*args, **kwargs))
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
        if not isinstance(error, (RaganError, KeyboardInterrupt)):
            error.add_note("".join(traceback.format_exception(error)).rstrip())
        message = ("error", error)
    with handler.lock:  # not in the middle of a record another thread is sending
        LOGGER.handlers[:] = []
        try:
            connection.send(message)
        except Exception as error:  # noqa: BLE001 - a result or an error that does not pickle
            connection.send(("error", RaganError(f"the child process's answer could not be sent back: {error}")))
        connection.close()


def run_in_child(function, /, *args, what: str, **kwargs):
    """``function(*args, **kwargs)`` in a fresh ``spawn`` child; its result, or its error raised here.

    ``function`` must be importable by name (a module-level function); ``args``, ``kwargs`` and the
    result must pickle. ``what`` names the work in the error raised if the child dies.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main,
        args=(sender, os.getpid(), LOGGER.getEffectiveLevel(), function, args, kwargs),
        name=f"ragan: {what}",
    )
    with HiddenMainModule():
        process.start()
    sender.close()
    answered = False
    try:
        while True:
            try:
                kind, value = receiver.recv()
            except EOFError:
                process.join()
                code = process.exitcode
                cause = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                hint = " (SIGKILL: most often the out-of-memory killer)" if code == -9 else ""
                raise RaganError(f"{what}: its process ended without an answer ({cause}{hint})") from None
            if kind == "log":
                logging.getLogger(value.name).handle(value)
                continue
            answered = True
            if kind == "error":
                raise value
            return value
    finally:
        receiver.close()
        if answered:
            process.join(_EXIT_SECONDS)  # a child that answered is exiting; it may not hang this one
        if process.is_alive():
            process.terminate()
            process.join(_TERMINATE_SECONDS)
            if process.is_alive():
                process.kill()
        process.join()
