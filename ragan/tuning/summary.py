"""The trials' summary: ``trials.csv`` (exact values), ``trials.md`` (a table) and ``trials.png`` (a plot).

Example:
    >>> import tempfile
    >>> details = dict(std=None, extractor="pixels_16x16", kimg=0.08, steps=5, seconds=1.0, continued_from=None,
    ...                tuner_id="tuner0", attempts=1, mlflow_run_id=None)
    >>> rows = [dict(details, trial_id="0", status="COMPLETED", value=0.3, hyperparameters={"lr": 1e-4}, message=""),
    ...         dict(details, trial_id="1", status="FAILED", value=None, hyperparameters={"lr": 1e30},
    ...              message="training diverged")]
    >>> out = Path(tempfile.mkdtemp())
    >>> [path.name for path in write_summary(out, rows, "kid")]
    ['trials.csv', 'trials.md', 'trials.png']
    >>> print((out / "trials.csv").read_text().splitlines()[2])
    1,FAILED,,,pixels_16x16,0.08,5,1.0,,tuner0,1,,1e+30,training diverged
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragan._common import read_json
from ragan.tuning.study import TRIALS_DIR

__all__ = ["format_value", "plot_trials", "trial_rows", "worker_rows", "write_summary"]

COMPLETED = "COMPLETED"
# The plot's size in pixels and its colours (matplotlib's first two default colours, and green).
PLOT_SIZE = (720, 380)
BLUE, RED, GREEN = "#1f77b4", "#d62728", "#009600"


def trial_rows(out: Path, oracle_trials: Mapping[str, Any]) -> list[dict]:
    """One row per trial: the oracle's status and score, with the trial record's details."""
    rows = []
    for trial_id in sorted(oracle_trials, key=lambda t: (len(str(t)), str(t))):
        trial = oracle_trials[trial_id]
        path = out / TRIALS_DIR / f"{trial_id}.json"
        record = read_json(path) if path.is_file() else {}
        status = trial.status or record.get("status", "UNKNOWN")
        objective = record.get("objective") or {}
        value = trial.score if status == COMPLETED else None
        rows.append(
            {
                "trial_id": str(trial_id),
                "status": status,
                "value": None if value is None else float(value),
                "std": objective.get("std"),
                "extractor": objective.get("extractor"),
                "kimg": record.get("kimg"),
                "steps": record.get("steps"),
                "seconds": record.get("seconds"),
                "continued_from": record.get("continued_from"),
                "tuner_id": record.get("tuner_id"),
                "attempts": len(record.get("attempts", [])),
                "mlflow_run_id": record.get("mlflow_run_id"),
                "hyperparameters": record.get("hyperparameters")
                or {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")},
                "message": record.get("message") or "",
            }
        )
    return rows


def worker_rows(out: Path, tuner_id: str) -> list[dict]:
    """A worker's view: the trials it ran, from their records."""
    records = (read_json(path) for path in sorted((out / TRIALS_DIR).glob("*.json")))
    return [
        {
            "trial_id": record["trial_id"],
            "status": record["status"],
            "value": (record.get("objective") or {}).get("value"),
            "hyperparameters": record.get("hyperparameters", {}),
            "message": record.get("message", ""),
        }
        for record in records
        if record.get("tuner_id") == tuner_id
    ]


def format_value(value, precise: bool = False) -> str:
    """Table text of a value: ``""`` for None; floats to 6 digits, or exactly (``repr``) for CSV.

    Example:
        >>> format_value(None), format_value(1 / 3), format_value(1 / 3, precise=True)
        ('', '0.333333', '0.3333333333333333')
    """
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if precise else f"{value:.6g}"
    return str(value)


_FIXED_COLUMNS = (
    "trial_id",
    "status",
    "value",
    "std",
    "extractor",
    "kimg",
    "steps",
    "seconds",
    "continued_from",
    "tuner_id",
    "attempts",
    "mlflow_run_id",
)


def write_summary(out: Path, rows: list[dict], metric: str) -> list[Path]:
    """Write ``trials.csv``, ``trials.md`` and ``trials.png`` (objective per trial) into ``out``; return their paths."""
    names = sorted({name for row in rows for name in row["hyperparameters"]})
    # Column titles: the row keys, except the objective's, named after the metric.
    titles = {"value": metric, "std": f"{metric}_std"}
    columns = [titles.get(key, key) for key in _FIXED_COLUMNS] + names + ["message"]

    def cells(row: dict, precise: bool = False) -> list[str]:
        values = [row[key] for key in _FIXED_COLUMNS] + [row["hyperparameters"].get(n) for n in names]
        return [format_value(value, precise) for value in [*values, row["message"]]]

    paths = [out / name for name in ("trials.csv", "trials.md", "trials.png")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(cells(row, precise=True) for row in rows)
    paths[0].write_text(buffer.getvalue(), encoding="utf-8")
    paths[1].write_text(_markdown(rows, columns, [cells(row) for row in rows], metric), encoding="utf-8")
    plot_trials(rows, metric, paths[2])
    return paths


def _markdown(rows: list[dict], columns: list[str], table: list[list[str]], metric: str) -> str:
    shown = [c for c in columns if c not in ("mlflow_run_id", "extractor")]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for cells in table:
        values = dict(zip(columns, cells))
        lines.append("| " + " | ".join(values[c].replace("|", "/") for c in shown) + " |")
    extractors = sorted({row["extractor"] for row in rows if row["extractor"]})
    if extractors:
        lines += ["", f"{metric} computed with features from: {', '.join(extractors)} (lower is better)."]
    return "\n".join(lines) + "\n"


def plot_trials(rows: list[dict], metric: str, path: Path) -> None:
    """Save a 720x380 PNG: objective per trial (blue dots), best so far (green steps), failed trials (red x).

    Drawn with matplotlib's Agg backend (no display needed), imported only here.
    """
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(PLOT_SIZE[0] / dpi, PLOT_SIZE[1] / dpi), dpi=dpi)
    axes = figure.add_subplot()
    axes.set_title(f"{metric} per trial (lower is better)", fontsize=10, loc="left")
    axes.set_xlabel("trial (blue: objective, green: best so far, red x: failed)", fontsize=9)
    positions = list(range(len(rows)))
    done = [(i, row["value"]) for i, row in enumerate(rows) if row["value"] is not None]
    if done:
        best = [min(value for _, value in done[: k + 1]) for k in range(len(done))]
        axes.step([i for i, _ in done], best, where="post", color=GREEN, linewidth=2)
        axes.plot([i for i, _ in done], [v for _, v in done], "o", color=BLUE, markersize=8, linestyle="none")
    failed = [i for i, row in enumerate(rows) if row["value"] is None]
    if failed:
        # Failed trials have no objective: crosses along the bottom of the plot.
        bottom = [0.05] * len(failed)
        axes.plot(
            failed, bottom, "x", color=RED, markersize=10, markeredgewidth=3, transform=axes.get_xaxis_transform()
        )
    step = 1 if len(rows) <= 40 else max(1, len(rows) // 20)
    axes.set_xticks(positions[::step], [row["trial_id"] for row in rows][::step], fontsize=8)
    axes.set_xlim(-0.5, max(len(rows), 1) - 0.5)
    if done and math.isclose(min(v for _, v in done), max(v for _, v in done)):
        value = done[0][1]
        axes.set_ylim(value - 0.5 * abs(value or 1.0), value + 0.5 * abs(value or 1.0))
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=dpi)
