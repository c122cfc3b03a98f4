"""Export the best trial's generator to ``OUT/best`` (a run directory) and describe it in ``OUT/best.json``."""

from __future__ import annotations

import shutil
from pathlib import Path

from ragan._common import read_json
from ragan._files import path_inside, publish_directory
from ragan.training.run_files import CONFIG_FILE, MODEL_FILE, RUN_FILE
from ragan.tuning.study import BEST_DIR, BEST_FILE, TRIALS_DIR, write_json

__all__ = ["export_best"]


def export_best(out: Path, best_row: dict, metric: str, study_run_id: str | None) -> dict:
    """Copy the best trial's generator into ``out/best`` (a run directory) and write ``best.json``.

    ``out/best`` holds ``model.keras``, ``run.json``, ``config.json`` and the last sample grid, so
    ``ragan generate OUT/best`` and ``ragan evaluate --run OUT/best`` use it directly; its
    ``run.json`` keeps the trial's MLflow run, where ``ragan evaluate`` logs its report. The new
    ``best`` replaces an earlier one only once it is complete.

    Args:
        out: the study directory.
        best_row: the best trial's row (see :func:`~ragan.tuning.summary.write_summary`).
        metric: the objective's name.
        study_run_id: the study's MLflow run id (recorded in ``best.json``).

    Returns:
        The content of ``best.json``.

    Example (a stand-in trial folder; a real one comes from ``ragan.train``):
        >>> trial = Path("study/trials/0")
        >>> trial.mkdir(parents=True)
        >>> for name in ("model.keras", "config.json"):
        ...     _ = (trial / name).write_text("{}")
        >>> _ = (trial / "run.json").write_text('{"model": "model.keras", "checkpoint": "checkpoints/ckpt-5.npz"}')
        >>> row = {"trial_id": "0", "value": 0.01, "std": None, "extractor": "pixels_16x16",
        ...        "hyperparameters": {"latent_dim": 64}, "kimg": 1.0, "mlflow_run_id": None}
        >>> export_best(Path("study"), row, "kid", None)["objective"]
        {'metric': 'kid', 'value': 0.01, 'std': None, 'extractor': 'pixels_16x16'}
        >>> sorted(path.name for path in Path("study/best").iterdir())
        ['config.json', 'model.keras', 'run.json']
    """
    source = out / TRIALS_DIR / best_row["trial_id"]
    best = out / BEST_DIR
    partial = out / f".{BEST_DIR}.partial"
    _copy_generator(source, partial, out, best_row["trial_id"])
    publish_directory(partial, best)
    summary = {
        "format": "ragan-tune-best",
        "trial_id": best_row["trial_id"],
        "objective": {
            "metric": metric,
            "value": best_row["value"],
            "std": best_row["std"],
            "extractor": best_row["extractor"],
        },
        "hyperparameters": best_row["hyperparameters"],
        "kimg": best_row["kimg"],
        "run_dir": str(source.resolve()),
        "generator": str(best.resolve()),
        "mlflow": {"trial_run_id": best_row["mlflow_run_id"], "study_run_id": study_run_id},
    }
    write_json(out / BEST_FILE, summary)
    return summary


def _copy_generator(source: Path, partial: Path, out: Path, trial_id: str) -> None:
    """Fill ``partial`` with the trial's model, config, last samples and a ``run.json`` pointing back to it."""
    run_info = read_json(source / RUN_FILE)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    # Names from run.json stay inside the trial folder and the output (path_inside refuses others).
    shutil.copy2(path_inside(source, run_info.get("model", MODEL_FILE), action="read"), partial / MODEL_FILE)
    shutil.copy2(source / CONFIG_FILE, partial / CONFIG_FILE)
    if run_info.get("samples") and path_inside(source, run_info["samples"], action="read").is_file():
        target = path_inside(partial, run_info["samples"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / run_info["samples"], target)
    run_info.pop("checkpoint", None)  # checkpoints stay with the trial
    run_info["model"] = MODEL_FILE
    run_info["tuning"] = {"study": str(out.resolve()), "trial_id": trial_id, "trial_dir": str(source.resolve())}
    write_json(partial / RUN_FILE, run_info)
