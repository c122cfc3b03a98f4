"""pytest settings for the docstring examples in ``ragan/`` (run with ``--doctest-modules``, see pytest.ini).

Each example runs in a fresh temporary folder, so that one that writes a file leaves nothing in the
checkout, and with ``np`` in its namespace.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctests_in_a_temporary_folder(request, doctest_namespace):
    if type(request.node).__name__ != "DoctestItem":
        yield
        return
    doctest_namespace["np"] = np
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.chdir(request.getfixturevalue("tmp_path"))
    try:
        yield
    finally:
        monkeypatch.undo()


# --------------------------------------------------------------------------------------------
# The checkout must not gain files while the tests and docstring examples run (tests/tree_guard.py).
# Checked once, by the controlling process (not by pytest-xdist's workers).
# --------------------------------------------------------------------------------------------
def _is_xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session):
    if not _is_xdist_worker(session.config):
        from tests.tree_guard import snapshot

        session.config._ragan_tree_before = snapshot(session.config.rootpath)  # noqa: SLF001 - our own attribute


def pytest_sessionfinish(session, exitstatus):
    if _is_xdist_worker(session.config):
        return
    from tests.tree_guard import new_entries, snapshot

    added = new_entries(getattr(session.config, "_ragan_tree_before", None), snapshot(session.config.rootpath))
    if added:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the tests left files in the checkout (write to tmp_path instead): " + ", ".join(added)
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
