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
