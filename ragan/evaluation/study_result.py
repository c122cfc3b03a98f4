"""The classifier study's results: :class:`ArmResult` per arm and :class:`StudyResult` (the paired
comparisons with their intervals and verdicts, the table, ``study.json``/``study.txt``), and the
definitions every report of a study repeats.

Example:
    >>> arm = ArmResult(name="real", kind="real", description="real only", num_train=4,
    ...                 composition={"real": 4, "synthetic": 0, "repeated_real": 0}, class_counts={"a": 2, "b": 2},
    ...                 synthetic_fraction=0.0, augmentation="none")
    >>> arm.runs = [{"seed": 0, "metrics": {"auc": 0.8}}, {"seed": 1, "metrics": {"auc": 0.9}}]
    >>> arm.summary()["auc"]["mean"]
    0.85
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ragan.errors import RaganError, did_you_mean
from ragan.evaluation.statistics import EFFECT_SIZE

__all__ = ["DEFINITIONS", "SUMMARY_METRICS", "ArmResult", "StudyResult"]

# Test metrics summarised per arm (mean and std over seeds).
SUMMARY_METRICS = ("auc", "accuracy", "balanced_accuracy", "sensitivity", "specificity")
DEFINITIONS = {
    "test_set": "every arm is tested on the real dataset's held-out 'test' split and early-stopped on its 'val' split",
    "synthetic_fraction": "f = synthetic / (real + synthetic) in the training set; the real training set is kept "
    "whole and round(f / (1 - f) * n_real) synthetic images are added, per class in "
    "proportion to the real class counts",
    "count_matched": "control arm: real training images of the same classes repeated (each once before any "
    "twice) with standard augmentation on the copies, up to the same count per class as the "
    "matching synthetic arm",
    "rebalance": "synthetic (or, in the control, repeated real) images of each smaller class until all classes "
    "are as large as the largest",
    "std": "sample standard deviation over seeds (ddof=1; 0 with one seed)",
    "auc": "ROC AUC on the test split; binary: of the positive class, multi-class: macro one-vs-rest",
    "sensitivity": "recall of the positive class (binary tasks; the second class unless positive_class is set)",
    "specificity": "recall of the negative class (binary tasks)",
    "difference": "per seed, the arm's test metric minus the baseline's (same seed, same test images), averaged "
    "over seeds",
    "interval": "95 % percentile bootstrap interval of that difference: each of 2000 replicates redraws the test "
    "images with replacement within each class (the same redraw for both arms) and, with 2 or more "
    "seeds, the seeds (the same for both arms), and recomputes the difference",
    "verdict": "'helps' when the whole interval is above 0, 'hurts' when it is below 0, otherwise 'no evidence "
    "either way'; an arm helps overall only if it helps against every baseline (real only, real + "
    "standard augmentation, count-matched control)",
    "did not learn": "a classifier whose test AUC interval includes 0.5 (chance) or whose test accuracy is not above "
    "always answering the largest class; a comparison with such a baseline gets no verdict ('no verdict'): "
    "beating a classifier that learned nothing is not evidence",
    "detectable difference": "(z_0.975 + z_0.8) x the bootstrap standard error of the difference over test "
    "images alone = the true difference an interval excluding 0 finds in 80 % of "
    "studies; larger than effect_size = the test split is too small for that effect",
}


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class ArmResult:
    """One arm of the study: its training set and its test results per seed.

    Attributes:
        name: e.g. ``"real+synthetic@0.2"``.
        kind: One of :data:`~ragan.evaluation.study.ARM_KINDS`.
        description: One sentence on what the arm trains on.
        num_train: Training images (real + synthetic + repeated real).
        composition: ``{"real": n, "synthetic": n, "repeated_real": n}``.
        class_counts: Training images per class name.
        synthetic_fraction: Fraction of the training set that is synthetic.
        augmentation: ``"none"``, ``"standard"`` (all images) or ``"standard (repeated copies)"``.
        runs: One dict per seed: ``seed``, ``metrics`` (see
            :func:`~ragan.evaluation.classifier.classification_metrics`), ``best_epoch``,
            ``epochs_trained``, ``best_val_auc``, ``seconds``.
        control: Name of the count-matched control of a synthetic arm.
    """

    name: str
    kind: str
    description: str
    num_train: int
    composition: dict
    class_counts: dict
    synthetic_fraction: float
    augmentation: str
    runs: list = field(default_factory=list)
    control: str | None = None

    def values(self, metric: str) -> list[float]:
        """The metric's value per seed (seeds where it is undefined left out)."""
        return [run["metrics"][metric] for run in self.runs if run["metrics"].get(metric) is not None]

    def summary(self) -> dict:
        """``{metric: {"mean", "std", "n"}}`` over seeds, for :data:`SUMMARY_METRICS` present."""
        result = {}
        for metric in SUMMARY_METRICS:
            values = self.values(metric)
            if values:
                result[metric] = _mean_std(values)
        return result

    def to_dict(self) -> dict:
        """Every attribute (the dicts copied), the summary over seeds, and the runs as JSON values."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "runs"}
        values = {name: dict(value) if isinstance(value, dict) else value for name, value in values.items()}
        return {**values, "summary": self.summary(), "runs": [_run_dict(run) for run in self.runs]}


def _run_dict(run: dict) -> dict:
    """A run as JSON values; the test predictions in full (rounding would tie saturated scores and move the AUC)."""
    probabilities = run.get("test_probabilities")
    if probabilities is None:
        return dict(run)
    return dict(run, test_probabilities=np.asarray(probabilities, dtype=np.float64).tolist())


def _mean_std(values: Sequence[float]) -> dict:
    values = np.asarray(values, dtype=np.float64)
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "n": int(values.size)}


@dataclass
class StudyResult:
    """Result of :func:`classifier_study`.

    Attributes:
        arms: :class:`ArmResult` per arm, in the order run.
        settings: Classifier, epochs, seeds, paths and the other options used.
        data: Class names and per-split class counts of the real and synthetic sets.
        notes: Remarks, e.g. arms that were left out and why.
        reference_model: The trained ``real`` arm model of the first seed (not serialised); the
            report uses it as the domain feature extractor.

    Example (``result`` from a :func:`~ragan.evaluation.study.classifier_study` run, hence skipped):
        >>> result.arm("real").summary()["auc"]   # doctest: +SKIP
        {'mean': 0.93, 'std': 0.01, 'n': 3}
    """

    arms: list
    settings: dict
    data: dict
    notes: list = field(default_factory=list)
    reference_model: object = field(default=None, repr=False)
    test_labels: np.ndarray | None = field(default=None, repr=False)
    _comparisons: dict = field(default_factory=dict, repr=False)

    def arm(self, name: str) -> ArmResult:
        """The arm called ``name``."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        names = [arm.name for arm in self.arms]
        raise RaganError(f"arm {name!r} is not in this study; arms: {', '.join(names)}.{did_you_mean(name, names)}")

    def learning(self) -> dict:
        """Per arm name: :func:`~ragan.evaluation.statistics.learning_check` of its runs (arms whose
        runs did not keep their test predictions are left out)."""
        if "learning" in self._comparisons:
            return self._comparisons["learning"]
        from ragan.evaluation.statistics import learning_check

        result = {}
        for arm in self.arms:
            predictions = [run.get("test_probabilities") for run in arm.runs]
            if self.test_labels is None or not predictions or any(p is None for p in predictions):
                continue
            result[arm.name] = learning_check(self.test_labels, [np.asarray(p) for p in predictions])
        self._comparisons["learning"] = result
        return result

    def comparisons(self, metric: str = "auc") -> list[dict]:
        """Seed-paired differences of each synthetic arm against its control, ``real_aug`` and ``real``.

        Each entry: ``arm``, ``baseline``, ``metric``, ``mean_difference``, ``std_difference``,
        ``wins`` (seeds where the arm is better), ``seeds`` (seeds compared), and, when the runs
        kept their test predictions, the bootstrap interval and verdict of
        :func:`~ragan.evaluation.statistics.paired_difference` (``ci_low``, ``ci_high``,
        ``verdict``, ``underpowered``, ...) with its one-line ``verdict_line``. A comparison whose
        baseline did not learn (:meth:`learning`) gets the verdict ``"no verdict"`` and
        ``not_learned`` naming it; an arm that did not learn is never said to help.
        """
        if metric in self._comparisons:
            return self._comparisons[metric]
        from ragan.evaluation.statistics import NO_VERDICT, paired_difference, verdict_line

        learning = self.learning()

        by_name = {arm.name: arm for arm in self.arms}
        result = []
        for arm in self.arms:
            if arm.kind not in ("real+synthetic", "synthetic_only"):
                continue
            baselines = [name for name in (arm.control, "real_aug", "real") if name and name in by_name]
            for baseline in baselines:
                mine = {run["seed"]: run for run in arm.runs if run["metrics"].get(metric) is not None}
                theirs = {run["seed"]: run for run in by_name[baseline].runs if run["metrics"].get(metric) is not None}
                seeds = [s for s in mine if s in theirs]
                if not seeds:
                    continue
                differences = [mine[s]["metrics"][metric] - theirs[s]["metrics"][metric] for s in seeds]
                stats = _mean_std(differences)
                entry = {
                    "arm": arm.name,
                    "baseline": baseline,
                    "metric": metric,
                    "mean_difference": stats["mean"],
                    "std_difference": stats["std"],
                    "wins": int(sum(d > 0 for d in differences)),
                    "seeds": seeds,
                }
                predictions = [(mine[s].get("test_probabilities"), theirs[s].get("test_probabilities")) for s in seeds]
                if self.test_labels is not None and all(a is not None and b is not None for a, b in predictions):
                    interval = paired_difference(
                        self.test_labels,
                        [np.asarray(a) for a, _ in predictions],
                        [np.asarray(b) for _, b in predictions],
                        metric=metric,
                        effect_size=self.settings.get("effect_size", EFFECT_SIZE),
                    )
                    entry.update({k: v for k, v in interval.items() if k not in ("metric", "per_seed")})
                    not_learned = [
                        name for name in (arm.name, baseline) if not learning.get(name, {"learned": True})["learned"]
                    ]
                    if not_learned:
                        entry["not_learned"] = not_learned
                        if baseline in not_learned or entry["verdict"] == "helps":
                            entry["verdict"] = NO_VERDICT
                    entry["verdict_line"] = verdict_line(entry)
                result.append(entry)
        self._comparisons[metric] = result
        return result

    def verdicts(self) -> list[dict]:
        """Per synthetic arm: its AUC verdict against every baseline, and one overall.

        Overall ``helps`` needs an interval above zero against every baseline run (real only,
        real + standard augmentation and the count-matched control): a gain that more gradient
        steps or standard augmentation also give is not the synthetic images' doing. ``hurts``
        when the interval against real-only training lies below zero; ``no verdict`` when a
        comparison has none (its baseline did not learn); otherwise no evidence.
        Arms without intervals (predictions not kept) are left out.
        """
        from ragan.evaluation.statistics import NO_VERDICT

        result = []
        for arm in self.arms:
            rows = [c for c in self.comparisons("auc") if c["arm"] == arm.name and "verdict" in c]
            if not rows:
                continue
            against_real = next((c for c in rows if c["baseline"] == "real"), None)
            if any(c["verdict"] == NO_VERDICT for c in rows):
                overall = NO_VERDICT
            elif all(c["verdict"] == "helps" for c in rows):
                overall = "helps"
            elif against_real is not None and against_real["verdict"] == "hurts":
                overall = "hurts"
            else:
                overall = "no evidence either way"
            result.append(
                {
                    "arm": arm.name,
                    "kind": arm.kind,
                    "verdict": overall,
                    "underpowered": any(c["underpowered"] for c in rows),
                    "comparisons": rows,
                }
            )
        return result

    def to_dict(self) -> dict:
        """Everything as JSON-serialisable values."""
        return {
            "settings": dict(self.settings),
            "data": dict(self.data),
            "definitions": dict(DEFINITIONS),
            "arms": [dict(arm.to_dict(), learning=self.learning().get(arm.name)) for arm in self.arms],
            "comparisons": {metric: self.comparisons(metric) for metric in ("auc", "accuracy")},
            "verdicts": self.verdicts(),
            "notes": list(self.notes),
            "test_labels": None if self.test_labels is None else [int(v) for v in self.test_labels],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def table(self, metrics: Sequence[str] = ("auc", "accuracy", "sensitivity", "specificity")) -> str:
        """A compact text table: one line per arm, ``mean ± std`` over seeds."""
        shown = [m for m in metrics if any(m in arm.summary() for arm in self.arms)]
        header = ["arm", "train (real+syn+rep)", *[m.upper() if m in ("auc",) else m for m in shown]]
        rows = []
        for arm in self.arms:
            summary = arm.summary()
            composition = arm.composition
            counts = (
                f"{arm.num_train} ({composition['real']}+{composition['synthetic']}+{composition['repeated_real']})"
            )
            cells = [arm.name, counts]
            for metric in shown:
                if metric in summary:
                    cells.append(f"{summary[metric]['mean']:.3f} ± {summary[metric]['std']:.3f}")
                else:
                    cells.append("-")
            rows.append(cells)
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]
        ]
        seeds = self.settings.get("seeds", [])
        lines.append(
            f"(test: real '{self.settings.get('real')}' test split, n={self.data['test']['num_examples']}; "
            f"mean ± std over {len(seeds)} seed(s))"
        )
        verdict_lines = [c["verdict_line"] for c in self.comparisons("auc") if "verdict_line" in c]
        if verdict_lines:
            lines.append("")
            lines.append("Paired AUC differences (bootstrap over test images and seeds):")
            lines.extend(f"  {line}" for line in verdict_lines)
        return "\n".join(lines)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``study.json`` and ``study.txt`` into ``directory`` (atomically each); return the JSON path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in (("study.json", self.to_json()), ("study.txt", self.table() + "\n")):
            temporary = directory / f".{name}.tmp"
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, directory / name)
        return directory / "study.json"
