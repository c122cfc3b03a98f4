"""``ragan.evaluate``: the verdict on a synthetic dataset, as ``report.json`` and ``report.html``.

One call measures everything the project promises about synthetic images, against a real
prepared dataset:

* **Quality**: FID, KID (mean ± std over random subsets) and precision/recall of the synthetic
  images against the real training images, per feature extractor. Every row names its extractor
  and resize method, because feature-space values are only comparable when both match. The
  *domain* extractor (the penultimate layer of the ragan classifier trained on the real data,
  seed 0 of the study's ``real`` arm) needs no download and is always used; ImageNet InceptionV3
  is added when its weights are available (a local file, or ``"imagenet"`` online). The same
  metrics between the held-out real test images and the training images are reported as a
  reference: a synthetic set cannot be expected to score better than new real images do.
* **Diversity**: mean pairwise MS-SSIM within the synthetic set and within the real set (a
  synthetic value well above the real one suggests mode collapse). Skipped, with the reason in
  the report, for images smaller than MS-SSIM's 11x11 window.
* **Similarity to the nearest real image**: PSNR, SSIM, MS-GMSD, MDSI and HaarPSI of each synthetic
  image (and, as the reference, each held-out real image) against its nearest real training image
  (smallest mean squared pixel difference); not against random real images, which mostly measures
  how much real images differ from each other.
* **Memorisation**: :func:`~ragan.evaluation.memorisation.memorisation_audit` with the real test
  images as the baseline; the closest synthetic/training pairs are shown.
* **Classifier study**: :func:`~ragan.evaluation.study.classifier_study`: does adding synthetic
  images beat real-only training, standard augmentation and the count-matched control, on held-out
  real images? Every comparison carries a 95 % bootstrap interval and a verdict ("helps", "no
  evidence either way", "hurts"; :mod:`~ragan.evaluation.statistics`), and the report opens with
  that verdict in plain words.

The output directory appears atomically (written aside, then renamed) and holds
``report.json``, the self-contained ``report.html`` (inline CSS, images as data URIs, plots as
inline SVG), ``study.json``/``study.txt`` and ``domain_classifier.keras`` (the domain extractor,
so its FIDs can be reproduced). With ``generator_run`` the report files are also logged as
artifacts (and the headline numbers as metrics) to the generator's MLflow run; a tracking
failure is a warning, not an error.

Example:
    >>> import ragan
    >>> report = ragan.evaluate("prepared", "synthetic", out="report", generator_run="runs/dcgan")  # doctest: +SKIP
    >>> print("\\n".join(report.summary))                                                         # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import io
import json
import math
import numbers
import os
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragan._files import publish_directory
from ragan._version import __version__
from ragan.errors import RaganError, did_you_mean

__all__ = ["EvaluationReport", "evaluate", "EXTRACTORS", "REPORT_JSON", "REPORT_HTML"]

EXTRACTORS = ("domain", "inception")
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
DOMAIN_MODEL_FILE = "domain_classifier.keras"
# Settings that --quick replaces, for a smoke run in about a minute.
QUICK = {"epochs": 3, "max_images": 1000, "kid_subsets": 20, "diversity_pairs": 50}
GRID_COLUMNS = 8
GALLERY_PAIRS = 8
# Fewest images of each compared set (real train, real test, synthetic) the metrics accept.
MIN_IMAGES = 10


@dataclass
class EvaluationReport:
    """What :func:`evaluate` wrote.

    Attributes:
        out: The report directory.
        data: The content of ``report.json``.
        summary: The headline lines (also at the top of the HTML report).
        study: The :class:`~ragan.evaluation.study.StudyResult`, or None without the study.
        mlflow: ``{"logged": bool, "run_id", "tracking_uri", "error"}`` when a run was given.
    """

    out: Path
    data: dict
    summary: list = field(default_factory=list)
    study: object = None
    mlflow: dict | None = None

    @property
    def json_path(self) -> Path:
        return self.out / REPORT_JSON

    @property
    def html_path(self) -> Path:
        return self.out / REPORT_HTML


# ---------------------------------------------------------------------------------------------
# Helpers


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"ragan evaluate: {message}", file=sys.stderr, flush=True)


def _json_ready(value):
    """numpy scalars/arrays to Python, non-finite floats to None (report.json is strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """Display pixels: uint16 -> 8 bit; floats in [-1, 1] -> 0..255."""
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.uint16:
        return np.rint(images / 257.0).astype(np.uint8)
    return np.clip(np.rint((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _png_data_uri(image: np.ndarray) -> str:
    from PIL import Image

    image = _to_uint8(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _display_scale(image_size: int) -> int:
    """Integer upscaling so small images (28 px) are visible; nearest neighbour keeps pixels honest."""
    return max(1, 64 // image_size)


def _strip(images: np.ndarray, scale: int, pad: int = 2) -> np.ndarray:
    """One row of images, ``pad`` px apart (white), each upscaled by ``scale``."""
    images = _to_uint8(images)
    count, height, width, channels = images.shape
    height, width = height * scale, width * scale
    strip = np.full((height, count * width + (count - 1) * pad, channels), 255, np.uint8)
    for i, image in enumerate(images):
        big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
        strip[:, i * (width + pad) : i * (width + pad) + width] = big
    return strip


def _grid_rows(images: np.ndarray, labels, class_names, rng, columns: int = GRID_COLUMNS) -> list[dict]:
    """Per class (or one row for unlabelled images): a random strip of ``columns`` images."""
    scale = _display_scale(images.shape[1])
    rows = []
    if labels is None:
        groups = [("all", np.arange(images.shape[0]))]
    else:
        groups = [(name, np.flatnonzero(labels == c)) for c, name in enumerate(class_names)]
    for name, indices in groups:
        if indices.size == 0:
            continue
        chosen = np.sort(rng.choice(indices, size=min(columns, indices.size), replace=False))
        rows.append({"label": name, "count": int(indices.size), "uri": _png_data_uri(_strip(images[chosen], scale))})
    return rows


def _weights_md5(model) -> str:
    digest = hashlib.md5()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _check_extractors(extractor, inception_weights) -> list[str]:
    names = [extractor] if isinstance(extractor, str) else list(extractor or [])
    for name in names:
        if name not in EXTRACTORS:
            raise RaganError(
                f"extractor={name!r} is not allowed; choose from {', '.join(map(repr, EXTRACTORS))}."
                f"{did_you_mean(name, EXTRACTORS)}"
            )
    if inception_weights is not None and "inception" not in names:
        names.append("inception")
    # The domain extractor needs no download, so it is always there.
    return ["domain"] + [name for name in names if name != "domain"]


def _check_inception_file(inception_weights) -> None:
    """A missing local weights file, found before any data is read ("imagenet" is tried when built)."""
    if inception_weights is None or (isinstance(inception_weights, str) and inception_weights == "imagenet"):
        return
    if isinstance(inception_weights, (str, os.PathLike)) and not Path(inception_weights).expanduser().is_file():
        raise RaganError(
            f"inception_weights='{inception_weights}': no such file; pass the path of a local InceptionV3 no-top "
            "weights file (.h5, .weights.h5, .keras) or 'imagenet' to download it."
        )


def _build_inception(inception_weights):
    """The Inception extractor, built before the study so that unusable weights fail in seconds, not hours."""
    from ragan.evaluation.features import inception_extractor

    try:
        return inception_extractor("imagenet" if inception_weights is None else inception_weights)
    except RaganError as error:
        # inception_extractor names its own argument; here the user passed inception_weights.
        raise RaganError(re.sub(r"(?<!\w)weights=", "inception_weights=", str(error))) from error


def _check_positive(name: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise RaganError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}.")
    return int(value)


def _subsample(images: np.ndarray, labels, limit: int, rng):
    if images.shape[0] <= limit:
        return images, labels
    chosen = np.sort(rng.choice(images.shape[0], size=limit, replace=False))
    return images[chosen], (None if labels is None else labels[chosen])


# ---------------------------------------------------------------------------------------------
# Quality metrics


def _quality_rows(extractor, sets: dict, kid_subsets: int, seed: int, progress: bool) -> tuple[list, dict]:
    """FID, KID, precision and recall of each compared set against the real training images."""
    import warnings

    from scipy.linalg import LinAlgWarning

    from ragan.evaluation.metrics import (
        fid_from_features,
        kid_from_features,
        kid_subset_size,
        precision_recall_from_features,
    )

    _log(progress, f"features ({extractor.name})")
    features = {name: extractor(images) for name, images in sets.items()}
    reference = features["real train"]
    rows = []
    for name in ("synthetic", "real test"):
        if name not in features:
            continue
        fake = features[name]
        described = {
            "extractor": extractor.name,
            "resize": extractor.resize,
            "feature_dim": extractor.feature_dim,
            "compared": f"{name} vs real train",
            "num_real": int(reference.shape[0]),
            "num_compared": int(fake.shape[0]),
            "reference": name != "synthetic",
        }
        subset = kid_subset_size(reference.shape[0], fake.shape[0])
        kid_mean, kid_std = kid_from_features(reference, fake, num_subsets=kid_subsets, subset_size=subset, seed=seed)
        pr = precision_recall_from_features(reference, fake, k=3)
        with warnings.catch_warnings():
            # Fewer images than feature dimensions make singular covariances: expected, and handled.
            warnings.simplefilter("ignore", LinAlgWarning)
            fid = fid_from_features(reference, fake)
        rows.append({"metric": "FID", "value": fid, "std": None, **described})
        rows.append(
            {
                "metric": "KID",
                "value": kid_mean,
                "std": kid_std,
                "detail": f"{kid_subsets} subsets of {subset}",
                **described,
            }
        )
        rows.append({"metric": "precision", "value": pr["precision"], "std": None, "detail": "k=3", **described})
        rows.append({"metric": "recall", "value": pr["recall"], "std": None, "detail": "k=3", **described})
    return rows, features


def _diversity(sets: dict, num_pairs: int, seed: int) -> dict:
    """Mean pairwise MS-SSIM of the synthetic and real training sets, or why it was skipped."""
    from ragan.evaluation.metrics import SSIM_FILTER_SIZE, mean_pairwise_ms_ssim

    height, width = sets["real train"].shape[1:3]
    if min(height, width) < SSIM_FILTER_SIZE:
        # Like the memorisation audit's SSIM search: too small for the window is a note, not an error.
        return {
            "synthetic_ms_ssim": None,
            "real_ms_ssim": None,
            "num_pairs": 0,
            "skipped": f"MS-SSIM diversity skipped: {height}x{width} images are smaller than its "
            f"{SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} window",
        }
    return {
        "synthetic_ms_ssim": mean_pairwise_ms_ssim(
            sets["synthetic"], min_value=-1.0, max_value=1.0, num_pairs=num_pairs, seed=seed
        ),
        "real_ms_ssim": mean_pairwise_ms_ssim(
            sets["real train"], min_value=-1.0, max_value=1.0, num_pairs=num_pairs, seed=seed
        ),
        "num_pairs": num_pairs,
        "note": "mean MS-SSIM over random pairs of distinct images within each set; a synthetic value well "
        "above the real one suggests mode collapse, one well below it suggests noise.",
    }


# Images of each set the similarity table pairs with their nearest training image (a random subset).
SIMILARITY_IMAGES = 1000
# metric -> (function name in ragan.evaluation.metrics, smallest image side, which way is better)
SIMILARITY_METRICS = {
    "PSNR": ("psnr", 1, "higher"),
    "SSIM": ("ssim", 11, "higher"),
    "MS-GMSD": ("ms_gmsd", 17, "lower"),
    "MDSI": ("mdsi", 1, "lower"),
    "HaarPSI": ("haarpsi", 16, "higher"),
}
SIMILARITY_PAIRING = (
    "each image is paired with its nearest real training image: the one with the smallest mean squared pixel "
    "difference (the highest PSNR) among all real training images; the held-out real test images, paired the same "
    "way, give the level new real images reach"
)
SIMILARITY_WHY = (
    "Pairing random images, as the AIDL21 project did, compares two unrelated patients: the scores then measure how "
    "much real images differ from one another (anatomy, position, exposure), nearly the same for any plausible "
    "generator, and say little about the synthetic images. Against the nearest real image the scores ask whether a "
    "synthetic image is as close to some real image as a new real image is: much closer suggests copies (see the "
    "memorisation audit), much further suggests images unlike any real one."
)


def _similarity_table(sets: dict, train_all: np.ndarray, seed: int, progress: bool) -> dict:
    """PSNR, SSIM, MS-GMSD, MDSI and HaarPSI of synthetic and held-out real images against their
    nearest real training image."""
    from ragan.evaluation import metrics as pixel_metrics

    _log(progress, "similarity to the nearest real training image (PSNR, SSIM, MS-GMSD, MDSI, HaarPSI)")
    rng = np.random.default_rng(seed)
    side = min(train_all.shape[1:3])
    rows, skipped, counts = [], [], {}
    pairs = {}
    for name in ("synthetic", "real test"):
        images, _ = _subsample(sets[name], None, SIMILARITY_IMAGES, rng)
        indices, _ = pixel_metrics.nearest_images(images, train_all)
        pairs[name] = (images, train_all[indices])
        counts[name] = int(images.shape[0])
    for metric, (function_name, minimum, better) in SIMILARITY_METRICS.items():
        if side < minimum:
            skipped.append(f"{metric} skipped: {side}x{side} images are smaller than its {minimum}x{minimum} minimum")
            continue
        function = getattr(pixel_metrics, function_name)
        row = {"metric": metric, "better": better}
        for name, (images, nearest) in pairs.items():
            # MDSI is not symmetric: the compared image first, the training image as the reference.
            values = np.asarray(function(images, nearest, min_value=-1.0, max_value=1.0), dtype=np.float64)
            finite = values[np.isfinite(values)]
            key = "synthetic" if name == "synthetic" else "real_test"
            row[key] = {
                "mean": float(finite.mean()) if finite.size else None,
                "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
                "median": float(np.median(finite)) if finite.size else None,
                "n": int(finite.size),
                "identical": int(np.sum(~np.isfinite(values))),
            }
        rows.append(row)
    return {
        "pairing": SIMILARITY_PAIRING,
        "why_not_random_pairs": SIMILARITY_WHY,
        "rows": rows,
        "num_images": counts,
        "num_train": int(train_all.shape[0]),
        "skipped": skipped,
        "value_range": [-1.0, 1.0],
    }


# ---------------------------------------------------------------------------------------------
# MLflow


def _mlflow_target(generator_run) -> dict:
    """``{"tracking_uri", "run_id"}`` from a run directory's ``run.json`` (RaganError when unusable)."""
    run_dir = Path(generator_run)
    run_file = run_dir / "run.json" if run_dir.is_dir() else run_dir
    if not run_file.is_file():
        raise RaganError(
            f"generator_run='{generator_run}' has no run.json; pass the training run directory (--run RUN_DIR)."
        )
    try:
        info = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RaganError(f"{run_file}: cannot read the run description ({error}).") from None
    tracking = info.get("mlflow") if isinstance(info.get("mlflow"), dict) else {}
    run_id = tracking.get("run_id") or info.get("mlflow_run_id")
    uri = tracking.get("tracking_uri") or info.get("mlflow_tracking_uri")
    return {"run_dir": str(run_dir), "run_id": run_id, "tracking_uri": uri}


def _metric_key(text: str) -> str:
    # MLflow keys allow alphanumerics, '_', '-', '.', ' ', '/'.
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", text)


def _log_to_mlflow(target: dict, files: Sequence[Path], metrics: dict) -> dict:
    """Log files as artifacts under ``evaluation/`` and metrics to an existing run; never raises."""
    from ragan.tracking import HTTP_ENVIRONMENT

    result = dict(target, logged=False, error=None)
    if not target.get("run_id"):
        result["error"] = "run.json names no MLflow run id (tracking was off or failed during training)"
        print(f"ragan: warning: not logged to MLflow: {result['error']}.", file=sys.stderr)
        return result
    saved = {key: os.environ.get(key) for key in HTTP_ENVIRONMENT}
    for key, value in HTTP_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    import logging

    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic", "urllib3", "sqlalchemy")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        import time

        from mlflow import MlflowClient
        from mlflow.entities import Metric

        client = MlflowClient(tracking_uri=target.get("tracking_uri"))
        client.get_run(target["run_id"])  # a clear failure when the run is not in this store
        for path in files:
            client.log_artifact(target["run_id"], str(path), "evaluation")
        timestamp = int(time.time() * 1000)
        entries = [
            Metric(_metric_key(k), float(v), timestamp, 0)
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        for start in range(0, len(entries), 500):
            client.log_batch(target["run_id"], metrics=entries[start : start + 500])
        result["logged"] = True
    except Exception as error:  # noqa: BLE001 - a tracking failure must not lose the report
        lines = str(error).strip().splitlines()
        result["error"] = f"{type(error).__name__}: {lines[0][:200] if lines else ''}"
        print(
            f"ragan: warning: the report was not logged to MLflow at {target.get('tracking_uri')} "
            f"({result['error']}); the files are in the output directory.",
            file=sys.stderr,
        )
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return result


def _headline_metrics(data: dict) -> dict:
    metrics = {}
    for row in data["quality"]["rows"]:
        if row["reference"]:
            continue
        kind = "domain" if row["extractor"].startswith("ragan_domain") else "inception"
        metrics[f"eval.{row['metric'].lower()}.{kind}"] = row["value"]
    memorisation = data.get("memorisation")
    if memorisation:
        metrics["eval.memorisation.fraction_flagged"] = memorisation["fraction_flagged"]
    diversity = data.get("diversity") or {}
    if diversity.get("synthetic_ms_ssim") is not None:
        metrics["eval.diversity.synthetic_ms_ssim"] = diversity["synthetic_ms_ssim"]
    for row in (data.get("similarity") or {}).get("rows", []):
        if row["synthetic"]["mean"] is not None:
            metrics[f"eval.nearest.{row['metric'].lower()}"] = row["synthetic"]["mean"]
    study = data.get("study")
    if study:
        for arm in study["arms"]:
            for metric in ("auc", "accuracy"):
                if metric in arm["summary"]:
                    metrics[f"eval.study.{arm['name']}.{metric}"] = arm["summary"][metric]["mean"]
    return metrics


# ---------------------------------------------------------------------------------------------
# Summary


def _summary_lines(data: dict) -> list[str]:
    lines = []
    rows = data["quality"]["rows"]
    for extractor in dict.fromkeys(row["extractor"] for row in rows):
        values = {(r["metric"], r["reference"]): r for r in rows if r["extractor"] == extractor}
        fid, ref = values.get(("FID", False)), values.get(("FID", True))
        precision, recall = values.get(("precision", False)), values.get(("recall", False))
        if fid:
            text = f"FID {fid['value']:.4g}"
            if ref:
                text += f" (held-out real images: {ref['value']:.4g})"
            if precision and recall:
                text += f", precision {precision['value']:.3f}, recall {recall['value']:.3f}"
            lines.append(f"{text} [{extractor}; {fid['resize']}]")
    diversity = data.get("diversity")
    if diversity and diversity.get("synthetic_ms_ssim") is not None:
        lines.append(
            f"Diversity: mean pairwise MS-SSIM {diversity['synthetic_ms_ssim']:.3f} synthetic vs "
            f"{diversity['real_ms_ssim']:.3f} real (higher = more alike)"
        )
    memorisation = data.get("memorisation")
    if memorisation:
        lines.append(
            f"Memorisation: {memorisation['num_flagged']} of {memorisation['num_synthetic']} synthetic images "
            f"({100 * memorisation['fraction_flagged']:.1f}%) flagged as near-copies of training images"
        )
    study = data.get("study")
    if study:
        arms = {arm["name"]: arm for arm in study["arms"]}

        def auc(name):
            summary = arms[name]["summary"].get("auc")
            return f"{summary['mean']:.3f} ± {summary['std']:.3f}" if summary else "n/a"

        if "real" in arms:
            lines.append(f"Classifier AUC on held-out real test images: real only {auc('real')}")
        for comparison in study["comparisons"]["auc"]:
            if "verdict_line" in comparison:
                lines.append(f"  {comparison['verdict_line']}")
                continue
            n = len(comparison["seeds"])
            lines.append(
                f"  {comparison['arm']}: AUC {auc(comparison['arm'])}, {comparison['mean_difference']:+.3f} "
                f"± {comparison['std_difference']:.3f} vs {comparison['baseline']} (better in {comparison['wins']} "
                f"of {n} seed(s))"
            )
    return lines


_PLAIN = {
    "helps": "Yes: adding the synthetic images helped the classifier",
    "hurts": "No: adding the synthetic images made the classifier worse",
    "no evidence either way": "Not shown: the synthetic images did not clearly beat every alternative",
}
_AGAINST = {"helps": "better than", "hurts": "worse than", "no evidence either way": "no clear difference from"}


def _plain_verdict(data: dict) -> dict:
    """The answer for a clinician: one headline and a few sentences, from the study's verdicts.

    The headline comes from the real + synthetic arms (adding synthetic images): "helps" when one
    of them beats every baseline, "hurts" when all of them are worse than real-only training,
    otherwise not shown. A synthetic-only arm gets its own sentence.
    """
    study = data.get("study")
    if not study or not study.get("verdicts"):
        return {
            "verdict": None,
            "headline": "No verdict on usefulness: the classifier study was not run.",
            "sentences": [
                "Run the report with the classifier study to learn whether the synthetic images help "
                "a classifier on real patients' images."
            ],
        }
    names = study["data"]["class_names"]
    test = study["data"]["test"]["num_examples"]
    arms = {arm["name"]: arm for arm in study["arms"]}
    verdicts = study["verdicts"]
    adding = [v for v in verdicts if v["kind"] == "real+synthetic"] or verdicts
    kinds = [v["verdict"] for v in adding]
    overall = "helps" if "helps" in kinds else "hurts" if all(k == "hurts" for k in kinds) else "no evidence either way"
    task = f"telling {names[1]} from {names[0]}" if len(names) == 2 else f"telling {len(names)} classes apart"
    sentences = [
        f"Question: does adding synthetic images to the real training images make a classifier better at "
        f"{task} on {test} held-out real images it never saw? Measured by AUC (how well it ranks cases: "
        "0.5 = chance, 1 = perfect); the 95 % intervals allow for which test images and which training runs "
        "happened to be drawn."
    ]
    labels = {"real": "real images only", "real_aug": "real images with standard augmentation"}
    underpowered = []
    for entry in verdicts:
        arm = arms[entry["arm"]]
        if arm["kind"] == "synthetic_only":
            title = "Synthetic images only"
        elif arm["composition"]["synthetic"]:
            title = (
                f"Real + synthetic images ({entry['arm']}: {arm['composition']['synthetic']} synthetic added to "
                f"{arm['composition']['real']} real)"
            )
        else:
            title = entry["arm"]
        parts = []
        for comparison in entry["comparisons"]:
            label = labels.get(
                comparison["baseline"],
                "the same number of repeated real images"
                if comparison["baseline"].startswith("count_matched")
                else comparison["baseline"],
            )
            parts.append(
                f"{_AGAINST[comparison['verdict']]} {label} ({comparison['mean_difference']:+.3f} AUC, "
                f"95 % interval {comparison['ci_low']:+.3f} to {comparison['ci_high']:+.3f})"
            )
            if comparison["underpowered"] and comparison["verdict"] == "no evidence either way":
                underpowered.append(comparison["detectable_difference"])
        sentences.append(f"{title}: " + "; ".join(parts) + ".")
    if underpowered:
        effect = verdicts[0]["comparisons"][0]["effect_size"]
        low, high = min(underpowered), max(underpowered)
        reach = f"{low:.3f}" if round(low, 3) == round(high, 3) else f"{low:.3f} to {high:.3f}"
        sentences.append(
            f"The test split ({test} images) is too small to detect an AUC difference of {effect:g}: it "
            f'detects about {reach} or more, so "no clear difference" does not mean "no effect". '
            "A larger test set would be needed to settle it."
        )
    if len(study["settings"]["seeds"]) == 1:
        sentences.append(
            "Only one training seed was run: the intervals cover the choice of test images, not the "
            "run-to-run variation of training."
        )
    sentences.append("This is a research measurement on one dataset, not evidence of clinical benefit.")
    return {"verdict": overall, "headline": _PLAIN[overall], "sentences": sentences}


# ---------------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;
margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}
h2{font-size:20px;margin:32px 0 8px;border-bottom:2px solid #e3e6ea;padding-bottom:4px}
h3{font-size:16px;margin:16px 0 6px}p,li{line-height:1.45}.muted{color:#5b6675;font-size:13px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.reference td{color:#5b6675;background:#fafbfc}
.summary{background:#eef6ff;border-left:4px solid #2f6fde;padding:8px 16px;margin:12px 0}
.summary li{margin:2px 0}.grids{display:flex;flex-wrap:wrap;gap:24px}
img.strip{image-rendering:pixelated;display:block}
.gallery{display:flex;flex-wrap:wrap;gap:12px}
.pair{border:1px solid #dde1e6;padding:6px;border-radius:4px;font-size:12px}
.pair.flagged{border-color:#d33;background:#fff3f3}.pair img{image-rendering:pixelated;margin-right:4px}
code{background:#f0f2f4;padding:1px 4px;border-radius:3px}
.verdict{border-radius:6px;padding:12px 18px;margin:12px 0;border-left:6px solid #5b6675;background:#f3f4f6}
.verdict h2{border:none;margin:0 0 6px;padding:0;font-size:22px}.verdict p{margin:4px 0}
.verdict.helps{border-color:#1f8a4c;background:#eaf7ef}.verdict.hurts{border-color:#c0392b;background:#fdecea}
.verdict.none{border-color:#b7791f;background:#fff8e6}
td.helps{color:#1f8a4c;font-weight:600}td.hurts{color:#c0392b;font-weight:600}
.legend{margin-right:14px;white-space:nowrap}.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
"""

_KIND_COLOURS = {
    "real": "#4a5568",
    "real_aug": "#718096",
    "real+synthetic": "#2f6fde",
    "count_matched": "#dd8a1f",
    "synthetic_only": "#7b3fbf",
}


DISTANCE_QUANTILES = (0, 1, 5, 25, 50)


def _distance_table(memorisation: dict) -> str:
    """Nearest-training-image distances of the synthetic images against the held-out real ones,
    per search, as quantiles: copies show up as a synthetic low tail far below the real one."""
    e = html.escape
    head = "".join(f"<th class='num'>{'min' if q == 0 else f'{q}%'}</th>" for q in DISTANCE_QUANTILES)
    rows = []
    for name, search in memorisation["searches"].items():
        for label, values in (
            ("synthetic &rarr; train", search.get("nearest_distance")),
            ("held-out real &rarr; train", search.get("baseline")),
        ):
            finite = np.asarray([v for v in values or [] if v is not None], dtype=np.float64)
            cells = "".join(
                f"<td class='num'>{_fmt(float(np.percentile(finite, q)), 4)}</td>"
                if finite.size
                else "<td class='num'>n/a</td>"
                for q in DISTANCE_QUANTILES
            )
            rows.append(
                f"<tr><td>{e(name)}</td><td>{label}</td><td class='num'>{finite.size}</td>{cells}"
                f"<td class='num'>{_fmt(search.get('threshold'), 4)}</td></tr>"
            )
    return (
        "<table id='memorisation-distances'><tr><th>search</th><th>images</th><th class='num'>n</th>"
        f"{head}<th class='num'>flag below</th></tr>{''.join(rows)}</table>"
        "<p class='muted'>Distance of each image to its nearest training image (lower = more alike). "
        "Synthetic images should look like new real images: a synthetic low tail well below the held-out "
        "real one means near-copies.</p>"
    )


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _svg_arm_plot(study: dict, metric: str, *, title: str) -> str:
    """Mean ± std (error bars) and per-seed values of ``metric`` for every arm, as inline SVG."""
    arms = [arm for arm in study["arms"] if metric in arm["summary"]]
    if not arms:
        return ""
    seeds = [[run["metrics"][metric] for run in arm["runs"] if run["metrics"].get(metric) is not None] for arm in arms]
    lows = [min([a["summary"][metric]["mean"] - a["summary"][metric]["std"], *s]) for a, s in zip(arms, seeds)]
    highs = [max([a["summary"][metric]["mean"] + a["summary"][metric]["std"], *s]) for a, s in zip(arms, seeds)]
    low, high = min(lows), max(highs)
    span = max(high - low, 0.02)
    low, high = max(0.0, low - 0.15 * span), min(1.0, high + 0.15 * span)
    if high - low < 0.02:
        low, high = max(0.0, high - 0.02), min(1.0, low + 0.02)
    left, right, top, bottom = 64, 24, 36, 120
    step = 96
    width = left + right + step * len(arms)
    height = 380
    plot_height = height - top - bottom

    def y(value):
        return top + (high - value) / (high - low) * plot_height

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="arm-plot" data-metric="{html.escape(metric)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i in range(6):
        value = low + (high - low) * i / 5
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e3e6ea"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">{value:.3f}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_height}" stroke="#333"/>')
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_height}" y2="{top + plot_height}" stroke="#333"/>'
    )
    reference = next((a for a in arms if a["name"] == "real"), None)
    if reference is not None:
        ref_y = y(reference["summary"][metric]["mean"])
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{ref_y:.1f}" y2="{ref_y:.1f}" stroke="#4a5568" '
            'stroke-dasharray="5,4"><title>real-only mean</title></line>'
        )
    for index, (arm, values) in enumerate(zip(arms, seeds)):
        x = left + step * index + step / 2
        colour = _KIND_COLOURS.get(arm["kind"], "#333")
        mean, std = arm["summary"][metric]["mean"], arm["summary"][metric]["std"]
        tip = html.escape(f"{arm['name']}: {mean:.4f} ± {std:.4f} over {len(values)} seed(s)")
        parts.append(f'<g class="arm" data-arm="{html.escape(arm["name"])}"><title>{tip}</title>')
        parts.append(
            f'<line class="error-bar" x1="{x:.1f}" x2="{x:.1f}" y1="{y(mean - std):.1f}" '
            f'y2="{y(mean + std):.1f}" stroke="{colour}" stroke-width="2"/>'
        )
        for cap in (mean - std, mean + std):
            parts.append(
                f'<line x1="{x - 8:.1f}" x2="{x + 8:.1f}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        for k, value in enumerate(values):
            offset = (k - (len(values) - 1) / 2) * 6
            parts.append(
                f'<circle class="seed" cx="{x + 18 + offset:.1f}" cy="{y(value):.1f}" r="2.5" '
                f'fill="{colour}" fill-opacity="0.45"/>'
            )
        parts.append(f'<circle class="mean" cx="{x:.1f}" cy="{y(mean):.1f}" r="5" fill="{colour}"/>')
        label_y = top + plot_height + 14
        parts.append(
            f'<text x="{x:.1f}" y="{label_y}" font-size="11" text-anchor="end" '
            f'transform="rotate(-35 {x:.1f} {label_y})">{html.escape(arm["name"])}</text>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _html_report(data: dict, visuals: dict) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ragan evaluation report: {e(Path(data['synthetic']['path']).name)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
    ]
    out.append("<h1>ragan evaluation report</h1>")
    out.append(
        f'<p class="muted">real: <code>{e(data["real"]["path"])}</code> &middot; synthetic: '
        f"<code>{e(data['synthetic']['path'])}</code>"
        + (
            f" &middot; generator run: <code>{e(str(data['generator_run']))}</code>"
            if data.get("generator_run")
            else ""
        )
        + f" &middot; ragan {e(data['ragan_version'])} &middot; {e(data['created'])}</p>"
    )
    plain = data["verdict"]
    css = {"helps": "helps", "hurts": "hurts", "no evidence either way": "none"}.get(plain["verdict"], "")
    out.append(
        f'<section id="verdict" class="verdict {css}" data-verdict="{e(plain["verdict"] or "")}">'
        f"<h2>{e(plain['headline'])}</h2>"
    )
    out.extend(f"<p>{e(sentence)}</p>" for sentence in plain["sentences"])
    out.append("</section>")
    out.append('<section id="summary"><div class="summary"><ul>')
    out.extend(f"<li>{e(line)}</li>" for line in data["summary"])
    out.append("</ul></div></section>")

    # Data
    out.append('<section id="data"><h2>Data</h2><table><tr><th>set</th><th>images</th>')
    class_names = data["real"]["class_names"]
    out.extend(f"<th>{e(name)}</th>" for name in class_names)
    out.append("</tr>")
    for label, info in [(f"real {name}", data["real"][name]) for name in ("train", "val", "test")] + [
        ("synthetic", data["synthetic"])
    ]:
        counts = info.get("class_counts") or {}
        out.append(f"<tr><td>{e(label)}</td><td class='num'>{info['num_examples']}</td>")
        out.extend(f"<td class='num'>{counts.get(name, '-') if counts else '-'}</td>" for name in class_names)
        out.append("</tr>")
    out.append("</table>")
    generator = data["synthetic"].get("generator")
    if generator:
        out.append(f'<p class="muted">generator: {e(json.dumps(generator))}</p>')
    out.append("</section>")

    # Samples
    out.append('<section id="sample-grids"><h2>Samples</h2><div class="grids">')
    for key, title in (("real", "Real (training split)"), ("synthetic", "Synthetic")):
        out.append(f'<div class="grid" data-set="{key}"><h3>{title}</h3><table>')
        for row in visuals["grids"][key]:
            out.append(
                f"<tr><td>{e(row['label'])}<br><span class='muted'>{row['count']} images</span></td>"
                f"<td><img class='strip' alt='{e(key)} {e(row['label'])} samples' src='{row['uri']}'></td></tr>"
            )
        out.append("</table></div>")
    out.append("</div></section>")

    # Quality
    out.append('<section id="quality"><h2>Quality metrics</h2>')
    out.append(
        '<p class="muted">Against the real training images. Values are comparable only between rows with '
        "the same extractor and resize (and similar set sizes: FID is biased upwards for small sets). The grey "
        "rows compare held-out real test images with the training images: the level new real images reach."
        "</p>"
    )
    out.append(
        '<table id="metric-table"><tr><th>metric</th><th>compared</th><th class="num">value</th>'
        "<th>feature extractor</th><th>resize</th><th class='num'>n real / n compared</th><th>detail</th></tr>"
    )
    for row in data["quality"]["rows"]:
        value = _fmt(row["value"], 4) + (f" ± {_fmt(row['std'], 4)}" if row.get("std") is not None else "")
        out.append(
            f"<tr class='{'reference' if row['reference'] else 'synthetic'}'><td>{e(row['metric'])}</td>"
            f"<td>{e(row['compared'])}</td><td class='num'>{value}</td><td>{e(row['extractor'])}</td>"
            f"<td>{e(row['resize'])}</td><td class='num'>{row['num_real']} / {row['num_compared']}</td>"
            f"<td>{e(row.get('detail') or '')}</td></tr>"
        )
    out.append("</table>")
    for note in data["quality"].get("notes", []):
        out.append(f'<p class="muted">{e(note)}</p>')
    diversity = data.get("diversity")
    if diversity and diversity.get("skipped"):
        out.append(f'<h3 id="diversity">Diversity</h3><p class="muted">{e(diversity["skipped"])}</p>')
    elif diversity:
        out.append(
            '<h3 id="diversity">Diversity</h3><table><tr><th>set</th><th class="num">mean pairwise MS-SSIM</th>'
            "<th>pairs</th></tr>"
        )
        out.append(
            f"<tr><td>synthetic</td><td class='num'>{_fmt(diversity['synthetic_ms_ssim'])}</td>"
            f"<td>{diversity['num_pairs']}</td></tr>"
        )
        out.append(
            f"<tr><td>real (training)</td><td class='num'>{_fmt(diversity['real_ms_ssim'])}</td>"
            f"<td>{diversity['num_pairs']}</td></tr></table>"
        )
        if diversity.get("note"):
            out.append(f'<p class="muted">{e(diversity["note"])}</p>')
    similarity = data.get("similarity")
    if similarity:
        counts = similarity["num_images"]
        out.append(
            '<h3 id="similarity">Similarity to the nearest real training image</h3>'
            '<table id="similarity-table"><tr><th>metric</th><th>better</th>'
            f"<th class='num'>synthetic (n={counts['synthetic']})</th><th class='num'>median</th>"
            f"<th class='num'>held-out real (n={counts['real test']})</th><th class='num'>median</th></tr>"
        )
        for row in similarity["rows"]:
            cells = []
            for key in ("synthetic", "real_test"):
                stats = row[key]
                value = _fmt(stats["mean"]) + (f" ± {_fmt(stats['std'])}" if stats["std"] is not None else "")
                if stats["identical"]:
                    value += f" ({stats['identical']} identical, left out)"
                cells.append(f"<td class='num'>{value}</td><td class='num'>{_fmt(stats['median'])}</td>")
            out.append(f"<tr><td>{e(row['metric'])}</td><td>{e(row['better'])}</td>{''.join(cells)}</tr>")
        out.append("</table>")
        out.append(
            f'<p class="muted">Pairing: {e(similarity["pairing"])} ({similarity["num_train"]} training images; '
            f"mean ± std over the images). {e(similarity['why_not_random_pairs'])}</p>"
        )
        for note in similarity.get("skipped", []):
            out.append(f'<p class="muted">{e(note)}</p>')
    out.append("</section>")

    # Study
    out.append('<section id="study"><h2>Classifier study</h2>')
    study = data.get("study")
    if study:
        settings = study["settings"]
        out.append(
            f'<p class="muted">{e(settings["classifier"])}, up to {settings["epochs"]} epochs (early stopping '
            f"on real validation AUC), seeds {e(', '.join(map(str, settings['seeds'])))}; tested on the real "
            f"test split ({study['data']['test']['num_examples']} images). Error bars: ± one standard "
            "deviation over seeds; small dots: single seeds; dashed line: real-only mean.</p>"
        )
        kinds = list(dict.fromkeys(arm["kind"] for arm in study["arms"]))
        legend = " ".join(
            f'<span class="legend"><span class="dot" style="background:{_KIND_COLOURS.get(kind, "#333")}">'
            f"</span>{e(kind)}</span>"
            for kind in kinds
        )
        out.append(
            '<div id="study-plot">'
            + visuals["plots"].get("auc", "")
            + visuals["plots"].get("accuracy", "")
            + f'<p class="muted">{legend}</p></div>'
        )
        metrics = [
            m
            for m in ("auc", "accuracy", "sensitivity", "specificity")
            if any(m in arm["summary"] for arm in study["arms"])
        ]
        out.append(
            '<table id="study-table"><tr><th>arm</th><th>training set</th><th>class counts</th>'
            + "".join(f"<th>{e(m)}</th>" for m in metrics)
            + "</tr>"
        )
        for arm in study["arms"]:
            c = arm["composition"]
            counts = ", ".join(f"{e(k)}: {v}" for k, v in arm["class_counts"].items())
            out.append(
                f"<tr><td title='{e(arm['description'])}'>{e(arm['name'])}</td>"
                f"<td>{arm['num_train']} = {c['real']} real + {c['synthetic']} synthetic + "
                f"{c['repeated_real']} repeated</td><td>{counts}</td>"
            )
            for metric in metrics:
                s = arm["summary"].get(metric)
                out.append(f"<td class='num'>{_fmt(s['mean'])} ± {_fmt(s['std'])}</td>" if s else "<td>n/a</td>")
            out.append("</tr>")
        out.append("</table>")
        if study["comparisons"]["auc"]:
            out.append(
                "<h3>Paired comparisons (AUC, same seeds, same test images)</h3><table id='comparison-table'>"
                "<tr><th>arm</th><th>vs</th><th class='num'>difference (mean ± std over seeds)</th>"
                "<th class='num'>95 % interval</th><th>verdict</th><th>better in</th>"
                "<th class='num'>detectable difference</th></tr>"
            )
            for comparison in study["comparisons"]["auc"]:
                verdict = comparison.get("verdict")
                interval = f"{comparison['ci_low']:+.4f} to {comparison['ci_high']:+.4f}" if verdict else "n/a"
                detectable = (
                    f"{comparison['detectable_difference']:.4f}"
                    + (" (test split too small)" if comparison["underpowered"] else "")
                    if verdict
                    else "n/a"
                )
                css = {"helps": "helps", "hurts": "hurts"}.get(verdict, "")
                out.append(
                    f"<tr data-verdict='{e(verdict or '')}'><td>{e(comparison['arm'])}</td>"
                    f"<td>{e(comparison['baseline'])}</td>"
                    f"<td class='num'>{comparison['mean_difference']:+.4f} ± "
                    f"{comparison['std_difference']:.4f}</td><td class='num'>{interval}</td>"
                    f"<td class='{css}'>{e(verdict or 'n/a')}</td>"
                    f"<td>{comparison['wins']} of {len(comparison['seeds'])} seeds</td>"
                    f"<td class='num'>{detectable}</td></tr>"
                )
            out.append("</table>")
            effect = settings.get("effect_size")
            out.append(
                '<p class="muted">Interval: 95 % percentile bootstrap of the seed-mean difference (2000 '
                "replicates redrawing the test images within each class, the same draw for both arms, and "
                "the seeds). Verdict: helps / hurts when the whole interval lies above / below 0. Detectable "
                "difference: 2.80 × the bootstrap standard error over test images (80 % power at the 5 % "
                f"level); above {_fmt(effect)} (effect_size) the test split is too small to detect a "
                "difference of that size.</p>"
            )
        for note in study.get("notes", []):
            out.append(f'<p class="muted">{e(note)}</p>')
        out.append("<h3>Definitions</h3><ul>")
        out.extend(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in study["definitions"].items())
        out.append("</ul>")
    else:
        out.append("<p>The classifier study was not run (<code>study=False</code> / <code>--no-study</code>).</p>")
    out.append("</section>")

    # Memorisation
    out.append('<section id="memorisation"><h2>Memorisation audit</h2>')
    memorisation = data.get("memorisation")
    if memorisation:
        out.append(
            f"<p>{memorisation['num_flagged']} of {memorisation['num_synthetic']} synthetic images "
            f"({100 * memorisation['fraction_flagged']:.1f}%) are flagged as near-copies. Rule: "
            f"{e(memorisation['rule'])}. Searches: "
            + ", ".join(f"{e(name)} ({e(s.get('space', ''))})" for name, s in memorisation["searches"].items())
            + ".</p>"
        )
        out.append(_distance_table(memorisation))
        out.append('<div class="gallery" id="memorisation-gallery">')
        for pair in visuals["gallery"]:
            distances = ", ".join(f"{e(k)} {_fmt(v, 4)}" for k, v in pair["distances"].items())
            out.append(
                f"<div class='pair{' flagged' if pair['flagged'] else ''}'>"
                f"<img alt='synthetic {pair['synthetic_index']}' src='{pair['synthetic_uri']}'>"
                f"<img alt='training {pair['train_index']}' src='{pair['train_uri']}'><br>"
                f"synthetic #{pair['synthetic_index']} &harr; train #{pair['train_index']}<br>"
                f"{distances}<br>copy score {_fmt(pair['copy_score'])}"
                f"{' &middot; <b>flagged</b>' if pair['flagged'] else ''}</div>"
            )
        out.append("</div>")
        out.append(
            '<p class="muted">Left: synthetic image; right: its nearest training image. Copy score = distance '
            "/ threshold of the search where the pair is closest relative to its threshold (below 1 = flagged)."
            "</p>"
        )
        for note in memorisation.get("notes", []):
            out.append(f'<p class="muted">{e(note)}</p>')
    else:
        out.append("<p>The memorisation audit was not run.</p>")
    out.append("</section>")
    out.append(f'<p class="muted">Settings: {e(json.dumps(data["settings"]))}</p>')
    out.append("</main></body></html>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The stage


def evaluate(
    real,
    synthetic,
    *,
    out,
    generator_run=None,
    extractor: str | Sequence[str] = "domain",
    inception_weights=None,
    study: bool = True,
    seeds: Sequence[int] = (0, 1, 2),
    synthetic_fractions: Sequence[float] = (0.0, 0.2, 0.5),
    add_per_class: int | None = None,
    rebalance: bool = False,
    classifier: str = "small_cnn",
    classifier_weights=None,
    epochs: int | None = None,
    batch_size: int = 64,
    synthetic_class: str | None = None,
    memorisation: bool = True,
    max_images: int = 5000,
    kid_subsets: int = 100,
    diversity_pairs: int = 200,
    quick: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    effect_size: float = 0.02,
) -> EvaluationReport:
    """Evaluate synthetic images against real ones and write ``report.json`` and ``report.html``.

    Args:
        real: The real prepared dataset (labelled, with ``train``, ``val`` and ``test`` splits).
        synthetic: The synthetic prepared dataset (e.g. ``ragan generate --format tfrecord``).
        out: Output directory; it appears atomically.
        generator_run: The generator's training run directory: the report files are logged to
            its MLflow run (tracking URI and run id from its ``run.json``); failures only warn.
        extractor: ``"domain"`` and/or ``"inception"``; the domain extractor is always used.
        inception_weights: InceptionV3 weights for the ``"inception"`` extractor: a local file
            (e.g. Keras' ``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``) or
            ``"imagenet"`` (download); giving it turns the Inception extractor on.
        study: Run the classifier study (the slow part); without it one real-only classifier is
            trained for the domain extractor. Arms needing more synthetic images of a class than
            the synthetic set holds are left out, with a note in the report.
        seeds: Seeds of the study (the first also trains the domain extractor).
        synthetic_fractions: Synthetic fractions of the study's ``real+synthetic@f`` arms.
        add_per_class: Also run the study's ``real+synthetic+N/class`` arms.
        rebalance: Also run the study's rebalancing arms.
        classifier: Classifier kind of the study and of the domain extractor.
        classifier_weights: EfficientNet initial weights (local file / ``"imagenet"``).
        epochs: Most epochs per classifier run (default 20; 3 with ``quick``).
        batch_size: Classifier batch size.
        synthetic_class: For an unlabelled synthetic set: the real class its images belong to.
        memorisation: Run the memorisation audit.
        max_images: At most this many images per set for the feature metrics, diversity and the
            audit's synthetic and test queries (random subsets, fixed by the first seed); the audit
            always searches the whole real training split.
        kid_subsets: Random subsets KID is averaged over.
        diversity_pairs: Image pairs of the MS-SSIM diversity estimate.
        quick: A smoke run: the first seed only and the :data:`QUICK` settings.
        effect_size: The smallest AUC difference worth detecting; comparisons whose test split is too
            small to detect it say so (see :mod:`ragan.evaluation.statistics`).
        overwrite: Replace an existing non-empty ``out``.
        progress: Progress messages and bars on stderr.

    Returns:
        An :class:`EvaluationReport`.

    Raises:
        RaganError: for incompatible datasets (image size, channels, class names), empty sets or
            fewer than 10 images in the real train or test split or the synthetic set, invalid
            options, missing or unloadable Inception weights, or an existing ``out``; all before
            the classifier study starts.

    Example:
        >>> report = ragan.evaluate("prepared", "synthetic", out="report", seeds=(0, 1, 2))   # doctest: +SKIP
        >>> report.html_path                                                                 # doctest: +SKIP
        PosixPath('report/report.html')
    """
    from ragan.evaluation.classifier import (
        array_dataset,
        build_classifier,
        classifier_input_resize,
        train_classifier,
    )
    from ragan.evaluation.study import check_study_options, classifier_study, load_study_data

    out = Path(out)
    extractors = _check_extractors(extractor, inception_weights)
    if "inception" in extractors:
        _check_inception_file(inception_weights)
    seeds, fractions, add_per_class = check_study_options(seeds, synthetic_fractions, add_per_class, classifier)
    from ragan.evaluation.statistics import check_effect_size

    effect_size = check_effect_size(effect_size)
    if quick:
        seeds = seeds[:1]
        epochs = QUICK["epochs"] if epochs is None else epochs
        max_images = min(max_images, QUICK["max_images"])
        kid_subsets = min(kid_subsets, QUICK["kid_subsets"])
        diversity_pairs = min(diversity_pairs, QUICK["diversity_pairs"])
    epochs = 20 if epochs is None else epochs
    _check_positive("epochs", epochs)
    _check_positive("batch_size", batch_size)
    _check_positive("max_images", max_images, minimum=10)
    _check_positive("kid_subsets", kid_subsets)
    _check_positive("diversity_pairs", diversity_pairs)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise RaganError(f"output '{out}' exists and is not empty; pass overwrite=True (--overwrite) to replace it.")
    for label, path in (("real", real), ("synthetic", synthetic)):
        if path is not None and out.resolve() == Path(path).resolve():
            raise RaganError(f"out='{out}' is the {label} dataset; write the report to a new directory.")
    mlflow_target = _mlflow_target(generator_run) if generator_run is not None else None
    if synthetic is None:
        raise RaganError("synthetic: a synthetic prepared dataset is required (--synthetic DIR).")

    # Checked and read before any message, so that a bad input is reported as one line.
    data = load_study_data(real, synthetic, synthetic_class=synthetic_class, require_synthetic_labels=False)
    _log(progress, f"read {len(data.train)} real training and {len(data.synthetic)} synthetic images")
    for label, path, split, count in (
        ("real", real, "train", len(data.train)),
        ("real", real, "test", len(data.test)),
        ("synthetic", synthetic, "train", len(data.synthetic)),
    ):
        if count < MIN_IMAGES:
            raise RaganError(
                f"{label} dataset '{path}': the {split!r} split holds {count} image(s), fewer than the {MIN_IMAGES} "
                "the metrics need (FID, KID, precision/recall, memorisation baseline)."
            )
    manifest = data.train.manifest
    rng = np.random.default_rng(seeds[0])
    # Built now: a weights file that does not load (or an offline 'imagenet') must fail before the study.
    inception = _build_inception(inception_weights) if "inception" in extractors else None

    partial = out.parent / f".{out.name}.ragan-partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        # 1. Classifier study (also yields the domain extractor's network).
        study_result = None
        if study:
            _log(
                progress, f"classifier study ({classifier}, seeds {', '.join(map(str, seeds))}, up to {epochs} epochs)"
            )
            study_result = classifier_study(
                real,
                synthetic,
                synthetic_fractions=fractions,
                add_per_class=add_per_class,
                rebalance=rebalance,
                seeds=seeds,
                classifier=classifier,
                weights=classifier_weights,
                epochs=epochs,
                batch_size=batch_size,
                synthetic_class=synthetic_class,
                progress=progress,
                data=data,
                skip_unavailable=True,
                effect_size=effect_size,
            )
            for note in study_result.notes:
                _log(progress, f"note: {note}")
            study_result.save(partial)
        domain_model = study_result.reference_model if study_result is not None else None
        if domain_model is None:
            _log(progress, f"training the domain classifier ({classifier}, seed {seeds[0]})")
            shape = manifest.image_shape
            from ragan._tf import import_keras

            import_keras().utils.set_random_seed(seeds[0])
            model = build_classifier(
                classifier,
                image_size=shape[0],
                channels=shape[2],
                num_classes=len(data.class_names),
                weights=classifier_weights,
            )
            domain_model = train_classifier(
                array_dataset(data.train.images, data.train.labels, batch_size=batch_size, shuffle=True, seed=seeds[0]),
                array_dataset(data.val.images, data.val.labels, batch_size=256),
                model=model,
                epochs=epochs,
                batch_size=batch_size,
                seed=seeds[0],
            ).model
        domain_model.save(partial / DOMAIN_MODEL_FILE)

        # 2. Feature extractors and quality metrics.
        from ragan.evaluation.features import model_extractor

        train_images, _ = _subsample(data.train.images, data.train.labels, max_images, rng)
        synthetic_images, _ = _subsample(data.synthetic.images, None, max_images, rng)
        test_images, _ = _subsample(data.test.images, data.test.labels, max_images, rng)
        scale = 2.0 / manifest.max_value
        synthetic_scale = 2.0 / data.synthetic.manifest.max_value
        sets = {
            "real train": train_images.astype(np.float32) * scale - 1.0,
            "synthetic": synthetic_images.astype(np.float32) * synthetic_scale - 1.0,
            "real test": test_images.astype(np.float32) * scale - 1.0,
        }
        domain_name = (
            f"ragan_domain_{classifier}:{Path(real).name}:seed{seeds[0]}:weights_md5={_weights_md5(domain_model)[:12]}"
        )
        domain = model_extractor(domain_model, name=domain_name)
        # The images enter at the classifier's own input size; any resize happens inside it.
        domain.resize = classifier_input_resize(classifier, manifest.image_size)
        quality_rows = []
        quality_notes = [
            f"domain extractor: penultimate layer of the {classifier} trained on the real training split "
            f"(seed {seeds[0]}), saved as {DOMAIN_MODEL_FILE}; its features are only comparable with reports "
            "using the same file (same weights_md5).",
        ]
        rows, domain_features = _quality_rows(domain, sets, kid_subsets, seeds[0], progress)
        quality_rows.extend(rows)
        if inception is not None:
            rows, _ = _quality_rows(inception, sets, kid_subsets, seeds[0], progress)
            quality_rows.extend(rows)
            quality_notes.append(
                "Inception: the Keras ImageNet InceptionV3 (pool3, 2048-d); not the TF-1 graph of pytorch-fid/TTUR, "
                "so its FIDs are comparable with other ragan reports only."
            )
        else:
            quality_notes.append(
                "No ImageNet-Inception FID: pass inception_weights (--inception-weights FILE) with a local copy of "
                "Keras' inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 to add it."
            )

        # 3. Diversity.
        _log(progress, "diversity (pairwise MS-SSIM)")
        diversity = _diversity(sets, diversity_pairs, seeds[0])
        if diversity.get("skipped"):
            _log(progress, f"note: {diversity['skipped']}")

        # 3b. Similarity of each image to its nearest real training image.
        similarity = _similarity_table(sets, data.train.images.astype(np.float32) * scale - 1.0, seeds[0], progress)

        # 4. Memorisation.
        memorisation_data, gallery = None, []
        if memorisation:
            from ragan.evaluation.memorisation import memorisation_audit

            _log(progress, "memorisation audit")
            # Against every training image, not the metrics' subsample: a copy of an image left out
            # of the subsample must be found too. The synthetic queries may stay subsampled.
            audit_train_images, audit_train, audit_train_features = (
                train_images,
                sets["real train"],
                domain_features["real train"],
            )
            if len(data.train.images) > len(train_images):
                audit_train_images = data.train.images
                audit_train = audit_train_images.astype(np.float32) * scale - 1.0
                audit_train_features = domain(audit_train)
            audit = memorisation_audit(
                audit_train,
                sets["synthetic"],
                sets["real test"],
                features=(audit_train_features, domain_features["synthetic"], domain_features["real test"]),
                feature_name=domain.name,
                value_range=(-1.0, 1.0),
            )
            memorisation_data = audit.to_dict()
            scale_up = _display_scale(manifest.image_size)
            for pair in audit.closest_pairs(GALLERY_PAIRS):
                gallery.append(
                    dict(
                        pair,
                        synthetic_uri=_png_data_uri(_strip(synthetic_images[pair["synthetic_index"]][None], scale_up)),
                        train_uri=_png_data_uri(_strip(audit_train_images[pair["train_index"]][None], scale_up)),
                    )
                )

        # 5. Visuals and files.
        _log(progress, "writing the report")
        grid_rng = np.random.default_rng(seeds[0])
        visuals = {
            "grids": {
                "real": _grid_rows(data.train.images, data.train.labels, data.class_names, grid_rng),
                "synthetic": _grid_rows(data.synthetic.images, data.synthetic_labels, data.class_names, grid_rng),
            },
            "gallery": gallery,
            "plots": {},
        }
        study_dict = study_result.to_dict() if study_result is not None else None
        if study_dict is not None:
            visuals["plots"] = {
                "auc": _svg_arm_plot(study_dict, "auc", title="Test ROC AUC per arm (mean ± std over seeds)"),
                "accuracy": _svg_arm_plot(
                    study_dict, "accuracy", title="Test accuracy per arm (mean ± std over seeds)"
                ),
            }
        described = data.describe()
        report = {
            "format": "ragan-evaluation-report",
            "ragan_version": __version__,
            "created": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
            "real": {"path": str(real), **{k: v for k, v in described.items() if k != "synthetic"}},
            "synthetic": {"path": str(synthetic), **described["synthetic"]},
            "generator_run": None if generator_run is None else str(generator_run),
            "settings": {
                "extractors": extractors,
                "inception_weights": None if inception_weights is None else str(inception_weights),
                "study": bool(study),
                "seeds": seeds,
                "synthetic_fractions": fractions,
                "add_per_class": add_per_class,
                "rebalance": bool(rebalance),
                "classifier": classifier,
                "classifier_weights": None if classifier_weights is None else str(classifier_weights),
                "epochs": int(epochs),
                "batch_size": int(batch_size),
                "synthetic_class": synthetic_class,
                "memorisation": bool(memorisation),
                "max_images": int(max_images),
                "kid_subsets": int(kid_subsets),
                "diversity_pairs": int(diversity_pairs),
                "quick": bool(quick),
                "effect_size": effect_size,
            },
            "quality": {"reference_set": "real train", "rows": quality_rows, "notes": quality_notes},
            "diversity": diversity,
            "similarity": similarity,
            "memorisation": memorisation_data,
            "study": study_dict,
            "files": {
                "html": REPORT_HTML,
                "domain_classifier": DOMAIN_MODEL_FILE,
                **({"study": "study.json"} if study_dict else {}),
            },
        }
        report = _json_ready(report)
        report["verdict"] = _plain_verdict(report)
        report["summary"] = _summary_lines(report)
        text = json.dumps(report, indent=2, allow_nan=False) + "\n"
        (partial / REPORT_JSON).write_text(text, encoding="utf-8")
        (partial / REPORT_HTML).write_text(_html_report(report, visuals), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    publish_directory(partial, out)

    mlflow_result = None
    if mlflow_target is not None:
        _log(progress, f"logging to the MLflow run of '{generator_run}'")
        mlflow_result = _log_to_mlflow(mlflow_target, [out / REPORT_JSON, out / REPORT_HTML], _headline_metrics(report))
    return EvaluationReport(out=out, data=report, summary=report["summary"], study=study_result, mlflow=mlflow_result)
