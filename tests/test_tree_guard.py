"""The guard that fails the session when tests leave files in the checkout."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.tree_guard import new_entries, snapshot

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("runs/\n.venv/\n")
    (tmp_path / "tracked.txt").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    return tmp_path


def test_new_untracked_and_ignored_entries_are_reported(tmp_path):
    repo = _repo(tmp_path)
    before = snapshot(repo)
    (repo / "studies").mkdir()
    (repo / "studies" / "big.ckpt").write_bytes(b"0")
    (repo / "runs").mkdir()  # ignored, still reported: .gitignore must not hide a stray output
    (repo / "runs" / "x").write_text("")
    (repo / ".venv").mkdir()  # an expected cache is not
    (repo / ".venv" / "y").write_text("")
    assert new_entries(before, snapshot(repo)) == ["runs/", "studies/"]


def test_entries_present_before_the_session_are_not_reported(tmp_path):
    repo = _repo(tmp_path)
    (repo / "runs").mkdir()
    (repo / "runs" / "old").write_text("")
    before = snapshot(repo)
    (repo / "runs" / "new").write_text("")  # inside an already present folder: git shows "runs/" only
    assert new_entries(before, snapshot(repo)) == []


def test_outside_a_checkout_nothing_is_reported(tmp_path):
    assert snapshot(tmp_path / "missing") is None
    assert new_entries(None, {"x"}) == []
