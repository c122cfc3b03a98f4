"""``ragan._child.run_in_child``: results, errors, log records and a dying child cross back to the parent."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from ragan._child import run_in_child
from ragan.errors import RaganError

# The functions below run in a spawned child, which imports them from this module by name.


def _pid_and_sum(values):
    logging.getLogger("ragan.child_test").info("summing %d values", len(values))
    logging.getLogger("ragan.child_test").debug("a detail the parent's level hides")
    return os.getpid(), sum(values)


def _refuse(name):
    raise RaganError(f"file '{name}': not a prepared dataset")


def _bug():
    return {}["missing"]


def _killed():
    os.kill(os.getpid(), signal.SIGKILL)


def _sleep(seconds):
    time.sleep(seconds)


def test_result_comes_back_from_another_process_with_its_log_records(capsys):
    pid, total = run_in_child(_pid_and_sum, [1, 2, 3], what="a sum")
    assert total == 6 and pid != os.getpid()
    out = capsys.readouterr().out
    # Through this process's ragan logger (and its level): the INFO line shows, the DEBUG one does not.
    assert "ragan: summing 3 values" in out and "a detail" not in out


def test_errors_are_raised_in_the_parent():
    with pytest.raises(RaganError, match=r"^file 'x.npz': not a prepared dataset$") as caught:
        run_in_child(_refuse, "x.npz", what="reading")
    assert not getattr(caught.value, "__notes__", None)  # a user's error stays one line
    with pytest.raises(KeyError) as caught:
        run_in_child(_bug, what="a bug")
    assert "Traceback" in caught.value.__notes__[0] and "_bug" in caught.value.__notes__[0]


def test_a_child_that_dies_is_one_line_naming_the_signal():
    with pytest.raises(RaganError, match=r"^the study: its process ended without an answer \(signal 9 \(SIGKILL"):
        run_in_child(_killed, what="the study")


def test_an_interrupted_parent_ends_its_child(monkeypatch):
    """Ctrl-C or SIGTERM while waiting: the child is ended, not left training."""
    import multiprocessing

    started = []
    original = multiprocessing.get_context("spawn").Process.start

    def start(process):
        original(process)
        started.append(process)
        signal.alarm(3)  # the parent is interrupted while the child sleeps for a minute

    monkeypatch.setattr(multiprocessing.get_context("spawn").Process, "start", start)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        begin = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_in_child(_sleep, 60, what="sleeping")
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - begin < 30
    assert started and not started[0].is_alive() and started[0].exitcode == -signal.SIGTERM
