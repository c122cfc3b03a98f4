"""Messages through the `ragan` logger: progress on stdout, warnings on stderr, -q/-v, progress=False."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ragan._logging import LOGGER, bars_enabled, progress_bar, stage_output
from tests.runs import run_main


def test_info_goes_to_stdout_and_warnings_to_stderr(capsys):
    logging.getLogger("ragan.some.module").info("read 3 files")
    logging.getLogger("ragan.tracking").warning("MLflow is unreachable")
    logging.getLogger("ragan").debug("a detail")  # below the default level
    captured = capsys.readouterr()
    assert captured.out == "ragan: read 3 files\n"
    assert captured.err == "ragan: warning: MLflow is unreachable\n"


def test_progress_false_leaves_warnings_only_for_the_call(capsys):
    level = LOGGER.level
    with stage_output(progress=False):
        assert not bars_enabled()
        logging.getLogger("ragan.x").info("hidden")
        logging.getLogger("ragan.x").warning("shown")
        with progress_bar(total=3, desc="hidden bar") as bar:
            bar.update(3)
    assert LOGGER.level == level and bars_enabled()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "ragan: warning: shown\n"


@pytest.fixture
def images_folder(tmp_path):
    from PIL import Image

    for index in range(12):
        folder = tmp_path / "images" / ("a" if index % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8), index * 20, np.uint8)).save(folder / f"{index}.png")
    (tmp_path / "images" / "a" / "notes.txt").write_text("not an image")
    return tmp_path / "images"


@pytest.mark.parametrize(
    "flag, bars, detail",
    [(None, True, False), ("-q", False, False), ("--quiet", False, False), ("-v", True, True)],
)
def test_cli_verbosity(images_folder, tmp_path, capsys, flag, bars, detail):
    argv = ["prepare", images_folder, "--out", tmp_path / "out", "--image-size", "4", "--workers", "0"]
    code, out, err = run_main(argv + ([flag] if flag else []), capsys)
    assert code == 0, err
    assert "\nPrepared 12 images" in "\n" + out  # the summary is the result: always printed
    assert ("prepare:" in err) is bars  # the progress bar
    assert ("ragan: skipped a/notes.txt:" in out) is detail
    assert LOGGER.level == logging.INFO  # main() leaves the level as it found it
