"""The files of a run directory: their names, ``run.json`` updates, the checks before a run starts.

See :mod:`ragan.training.loop` for the layout of ``RUN_DIR``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import threading
from pathlib import Path

from ragan._common import read_json
from ragan.errors import RaganError

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "MODEL_FILE",
    "RUN_FILE",
    "SAMPLES_DIR",
    "check_run_dir",
    "grid_file_name",
    "resume_command",
    "run_summary",
    "update_run_file",
]

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"

_RUN_FILE_LOCK = threading.Lock()


def update_run_file(run_dir: Path, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` (atomically; also called from the tracking thread).

    A field holding a dict is merged into the dict already there.

    Example:
        >>> run = Path("runs/demo")
        >>> run.mkdir(parents=True)
        >>> _ = update_run_file(run, status="running", mlflow={"run_id": "abc"})
        >>> update_run_file(run, status="finished", mlflow={"failure": None})
        {'status': 'finished', 'mlflow': {'run_id': 'abc', 'failure': None}}
    """
    from ragan.training.checkpoint import atomic_write_text

    with _RUN_FILE_LOCK:
        path = Path(run_dir) / RUN_FILE
        current = {}
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                current = json.loads(path.read_text(encoding="utf-8"))
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
        atomic_write_text(path, json.dumps(current, indent=2) + "\n")
        return current


def check_run_dir(run_dir: Path) -> None:
    """Refuse to start a new run in ``run_dir`` unless it is missing or empty (one-line errors)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RaganError(f"out='{run_dir}' exists and is not a directory.")
    if (run_dir / CONFIG_FILE).is_file():
        raise RaganError(
            f"'{run_dir}' already holds a training run; pass --resume (resume=True) to continue it, "
            "or choose another --out."
        )
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise RaganError(f"out='{run_dir}' is not empty and holds no ragan run; choose an empty or new directory.")


def grid_file_name(kimg: float) -> str:
    """``grid-00002.048.png`` for 2.048 kimg (sorts by training progress)."""
    return f"grid-{kimg:09.3f}.png"


def resume_command(model_name: str, run_dir: str | os.PathLike) -> str:
    """The command that continues the run in ``run_dir``: ``ragan train dcgan --out runs/x --resume``."""
    return f"ragan train {model_name} --out {shlex.quote(str(run_dir))} --resume"


def run_summary(run_dir: str | os.PathLike) -> list[str]:
    """Lines saying where a run's outputs are (read from its ``run.json``).

    Example:
        >>> run = Path("runs/demo")
        >>> run.mkdir(parents=True)
        >>> _ = update_run_file(run, checkpoint="checkpoints/ckpt-000000002.npz")
        >>> print("\\n".join(run_summary(run)))
          checkpoint: runs/demo/checkpoints/ckpt-000000002.npz
          config:     runs/demo/config.json
    """
    from ragan.tracking import ui_command

    run_dir = Path(run_dir)
    info = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    lines = []
    if info.get("samples"):
        lines.append(f"  samples:    {run_dir / SAMPLES_DIR}/ (latest {run_dir / info['samples']})")
    if info.get("model") and (run_dir / info["model"]).is_file():
        lines.append(f"  model:      {run_dir / info['model']}   (ragan generate {run_dir} --n 100 --out synthetic)")
    if info.get("checkpoint"):
        lines.append(f"  checkpoint: {run_dir / info['checkpoint']}")
    lines.append(f"  config:     {run_dir / CONFIG_FILE}")
    tracking = info.get("mlflow") or {}
    if tracking.get("failure"):
        lines.append(f"  MLflow:     not recorded ({tracking['failure']})")
    elif tracking.get("run_id"):
        lines.append(
            f"  MLflow:     run {tracking['run_id']} (experiment {tracking.get('experiment')!r}) "
            f"at {tracking.get('tracking_uri')}"
        )
        command = ui_command(tracking.get("tracking_uri", ""))
        if command:
            lines.append(f"              view it with: {command}")
    return lines
