"""Benchmark: does synthetic data help when labels are scarce? The low-data table (hours on a CPU; not CI).

The situation ragan exists for: a hospital has few labelled images. Per dataset and labelled
fraction ("row") this script trains the generators on the labelled subset, generates labelled
synthetic images and runs ragan's classifier study (:func:`ragan.evaluation.study.classifier_study`,
tested on the real held-out test split, 5 seeds), then compares every arm with ragan's paired
bootstrap intervals and verdicts (:mod:`ragan.evaluation.statistics`).

Data:
    PneumoniaMNIST (the official npz, 28 px resized to 32 px): 5 %, 10 % and 25 % of the official
    train split (stratified by class, nested: the 10 % subset holds the 5 % one), the official val
    split for early stopping and the official 624-image test split for every figure.
    Brain tumour MRI (4 classes): its ``Testing/`` folder is the test split; a stratified 10 % of
    ``Training/`` is carved out as the val split, and the row labels 10 % of the rest; at 64 px
    when the printed estimate for that row fits ``--mri-hours`` (4), else 32 px (``--mri-size``).

Generators per row, each for the same ``--kimg`` budget (conditional, GAN seed 0):
    dcgan          DCGAN + DiffAugment, trained on the labelled subset (the earlier baseline);
    sg2            StyleGAN2 ``--cfg small`` + ADA, from scratch on the labelled subset;
    sg2_transfer   StyleGAN2 small: one unconditional network pretrained (``--pretrain-kimg``) on all
                   the dataset's training images without their labels, once per dataset, then
                   fine-tuned class-conditional on the labelled subset (``init_from``). On the first
                   row of the first dataset it is trained with and without Freeze-D
                   (``--freeze-d`` layers), and the better one by validation AUC is kept for the
                   other rows;
    sg2_fixed_aug  first row of the first dataset only, when the from-scratch run's final ADA
                   heuristic E[sign(D(real))] is below ADA's target (0.6, p then stays near 0):
                   the same run with ``augment=fixed`` at ``--fixed-augment-p`` (0.2; not in --quick).
    Every GAN run ends with its ADA probability p and E[sign(D(real))] (``real_sign``) reported.

Synthetic sets: per generator 3x the real count per class (truncation 1, no filter). The best
generator of the row (highest mean validation AUC of its real + synthetic 1x arm; never the test
split) also gets the recipes, one change at a time: truncation ``--truncation`` (0.7), the
discriminator filter (keep images D scores >= ``--filter-threshold`` = 0.7 real), and 0.5x and 3x
the real count instead of 1x. (DCGAN's truncation redraws latents beyond psi, BigGAN's trick;
StyleGAN2's pulls w toward its mean.)

Classifier arms (the study's small CNN, ``--seeds``, early-stopped on the real val split):
    real, real_aug (standard augmentation), count_matched@0.5x/1x/3x (the same number of repeated,
    augmented real images as the synthetic arm adds), per generator real+synthetic 1x and
    synthetic_only (its whole 3x set), the recipes, and the reference "real, with the labels of the
    next fraction" (5 -> 10 %, 10 -> 25 %, 25 -> 50 %): what labelling more images would give.
    Every real + synthetic and synthetic-only arm is compared, seed-paired, with real, real_aug, its
    count-matched control and the next fraction's real arm: mean difference, 95 % bootstrap interval
    over test images and seeds, verdict (helps / no evidence either way / hurts) and the warning
    where the test split cannot detect ``--effect-size`` (0.02 AUC).

Resumable: every prepared subset, GAN run (ragan's own ``resume="auto"``, so an interrupted run
continues from its last checkpoint, about every 2 kimg, mid-run), generated set and classifier run
(one file per seed) is cached under ``--cache DIR`` (keep it outside the repository) and skipped
when re-run; Ctrl-C or SIGTERM during a GAN run checkpoints it first. Each cache entry's name ends
in a hash of everything that produced it (the stage's code version, the data, the GAN config and
budget, the classifier and its ``CLASSIFIER_VERSION``, the seed...), so a change makes new entries
instead of reusing stale ones. Each stage prints one line with the elapsed time; the GAN runs are
MLflow runs in CACHE/mlflow.db (experiment ``low-data``) unless ``MLFLOW_TRACKING_URI`` is set.

Outputs in ``--out`` (default CACHE/report): ``results.json`` (every arm, run, comparison, choice,
GAN end state and stage time), ``table.md`` and the figure (``--figure``, default
OUT/low-data.png): test AUC against the labelled fraction, one line per arm, 95 % bands.

Run::

    python benchmarks/low_data.py --cache /work/cache/low-data --estimate   # the plan and its cost, then exit
    python benchmarks/low_data.py --cache /work/cache/low-data --figure docs/low-data.png
    python benchmarks/low_data.py --cache /tmp/ld --quick                   # minutes: the whole path, tiny

``--quick``: PneumoniaMNIST only, at 16 px, one fraction (5 %), two seeds, two classifier epochs,
tiny networks trained for a few steps: a smoke test of every stage (the tests run it).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import inspect
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PNEUMONIA_NPZ = SHARED_DATA / "pneumoniamnist" / "pneumoniamnist.npz"
MRI_DIR = SHARED_DATA / "brain_tumor_mri"
PNEUMONIA_CLASSES = ["normal", "pneumonia"]

# Bumped whenever a stage's code changes what it produces; part of every cache key of that stage.
STAGE_VERSIONS = {"data": 1, "gan": 1, "synthetic": 1, "classifier": 1}

# The generators' configurations (all conditional, so synthetic images carry labels).
GAN_CONFIGS = {
    "dcgan": ("dcgan", {"conditional": True, "augment": "diffaugment"}),
    "sg2": ("stylegan2", {"cfg": "small", "conditional": True, "augment": "ada"}),
    "pretrain": ("stylegan2", {"cfg": "small", "conditional": False, "augment": "ada"}),
    "sg2_transfer": ("stylegan2", {"cfg": "small", "conditional": True, "augment": "ada"}),
    "sg2_fixed_aug": ("stylegan2", {"cfg": "small", "conditional": True, "augment": "fixed"}),
}
GAN_BATCH = {"dcgan": 64, "stylegan2": 32}
# The budgets: with them the PneumoniaMNIST rows are estimated at about 7.6 h of the two idle cores
# and the MRI row (at 32 px; 64 px would take 5.2 h) at 3.3 h (see --estimate).
DEFAULT_KIMG = 30.0  # every GAN run of a row, fine-tuning included
DEFAULT_PRETRAIN_KIMG = 120.0  # the unconditional pretraining on all the training images, once per dataset
# --quick: networks small enough to train a few steps in seconds.
QUICK_OVERRIDES = {
    "dcgan": {"latent_dim": 16, "base_filters": 8},
    "stylegan2": {"latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16, "mapping_layers": 1},
}
# --quick: no lazy regularisers either (each combination of them is one more traced step).
QUICK_STYLEGAN2_SCHEDULE = {"r1_interval": 0, "pl_weight": 0.0}
ADA_TARGET = 0.6  # StyleGAN2Config.ada_target's default, the official value
FILTER_ATTEMPTS = 50  # generation tries up to this many times the count for the D filter's recipe
GENERATOR_TITLES = {
    "dcgan": "DCGAN + DiffAugment",
    "sg2": "StyleGAN2 small + ADA",
    "sg2_transfer": "StyleGAN2 small, pretrained unlabelled + fine-tuned",
    "sg2_transfer_freezed": "StyleGAN2 small, pretrained + fine-tuned with Freeze-D",
    "sg2_fixed_aug": "StyleGAN2 small, fixed augmentation",
}

# Cost of the pieces on the 2-core machine these benchmarks run on; the estimate multiplies them by
# the planned work. Measured with --measure-costs on 2026-12-06 while the machine was shared (load
# 13-17, StyleGAN2 small at 32 px then ran at 172 s/kimg) and divided by 3.13, so that StyleGAN2
# small at 32 px costs what it cost on the idle machine (55 s/kimg, README); the other pieces keep
# their measured ratio to it (the classifier's then agrees with the README's idle figure: an epoch of
# 800 images in about 2 s). ``--measure-costs`` measures them again (into CACHE/costs.json, which
# the estimate then uses instead).
COSTS = {
    # seconds per kimg of steady training (after the first tick), by model@image size
    # StyleGAN2: measured again in the table's own run on the idle machine (2026-12-06, pretraining at
    # 32 px: 48 img/s = 21 s/kimg in steady state, as issue #20 measured), not the scaled 55 and 90
    # (64 px keeps the measured 64/32 ratio, 282/172).
    "gan_s_per_kimg": {"stylegan2@32": 21.0, "stylegan2@64": 34.4, "dcgan@32": 6.2, "dcgan@64": 18.6},
    # seconds per run outside the steady ticks: building, tracing (the first tick), saving
    "gan_start_s": {"stylegan2@32": 144.0, "stylegan2@64": 140.0, "dcgan@32": 16.0, "dcgan@64": 62.0},
    # classifier run: epochs * (per_epoch + per_kimg_epoch * training images / 1000), by image size
    "classifier_per_epoch_s": {"32": 1.55, "64": 1.74},
    "classifier_per_kimg_epoch_s": {"32": 0.61, "64": 0.69},
    "classifier_epochs": 8.75,
    # one classifier_study call: reading the data, building and tracing the classifier
    "classifier_call_s": 2.0,
    # generating 1000 images at 32 px (D scores and writing included), and loading the model
    "generate_per_kimg_s": 4.2,
    "generate_start_s": 3.0,
    # share of generated images the D filter keeps (it generates 1/acceptance as many; a guess)
    "filter_acceptance": 0.2,
}
BUILT_IN_COSTS_NOTE = "built-in costs: measured 2026-12-06 on the shared machine, scaled to the idle machine"


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------
def digest(value) -> str:
    """A short, stable hash of a JSON-able value (the cache keys)."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()[:16]


def write_json(path: Path, value) -> None:
    """Write JSON atomically (temporary file, then rename): an interrupted run leaves no torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def quiet(function) -> dict:
    """``{"progress": False}`` when ``function`` takes it (the stage APIs may move to logging)."""
    return {"progress": False} if "progress" in inspect.signature(function).parameters else {}


def percent(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def budget(settings, kimg: float) -> str:
    """``50 kimg``, or the steps of a --quick run."""
    return f"{kimg:g} kimg" if settings.gan_steps is None else f"{settings.gan_steps} steps"


def pct(fraction: float) -> str:
    """``10%``: the fraction in arm names."""
    return f"{100 * fraction:g}%"


def fraction_tag(fraction: float) -> str:
    return f"f{100 * fraction:g}".replace(".", "p")


def classifier_version() -> int:
    """The classifier's architecture version (``CLASSIFIER_VERSION``; 1 before it existed)."""
    from ragan.evaluation import classifier

    return int(getattr(classifier, "CLASSIFIER_VERSION", 1))


class Clock:
    """One line per stage with the elapsed time since the start; every stage's seconds kept."""

    def __init__(self, stream=None):
        self.start = time.perf_counter()
        self.stream = stream or sys.stdout
        self.timings: list[dict] = []

    def stamp(self) -> str:
        seconds = int(time.perf_counter() - self.start)
        return f"[{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}]"

    def say(self, text: str) -> None:
        print(f"{self.stamp()} {text}", file=self.stream, flush=True)

    @contextlib.contextmanager
    def stage(self, name: str, cached: bool):
        """``with clock.stage("gan dcgan 5 %", cached=False): ...`` prints the start and the end."""
        if cached:
            self.say(f"{name}: cached")
            self.timings.append({"stage": name, "seconds": 0.0, "cached": True})
            yield
            return
        self.say(f"{name} ...")
        begin = time.perf_counter()
        record = {"stage": name, "seconds": None, "cached": False}
        self.timings.append(record)
        try:
            yield
        except Exception as error:
            record["seconds"] = round(time.perf_counter() - begin, 1)
            record["failed"] = f"{type(error).__name__}: {error}"
            self.say(f"{name}: FAILED after {record['seconds']:.0f} s ({record['failed']})")
            raise
        record["seconds"] = round(time.perf_counter() - begin, 1)
        self.say(f"{name}: done in {record['seconds']:.0f} s")


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------
@dataclass
class Settings:
    cache: Path
    out: Path
    figure: Path
    datasets: list
    fractions: list
    mri_fraction: float
    mri_size: int | None
    mri_hours: float
    mri_val_fraction: float
    kimg: float
    pretrain_kimg: float
    seeds: list
    epochs: int
    patience: int | None
    classifier: str
    counts: tuple = (0.5, 1.0, 3.0)
    truncation: float = 0.7
    filter_threshold: float = 0.7
    freeze_d: int = 4
    # Freeze-D as decided by an earlier run's first row: no first-row comparison, no fixed-augment variant.
    freeze_d_choice: int | None = None
    fixed_augment_p: float = 0.2
    effect_size: float = 0.02
    subset_seed: int = 0
    gan_seed: int = 0
    generation_seed: int = 1
    quick: bool = False
    image_size: int = 32
    pneumonia_npz: Path = PNEUMONIA_NPZ
    mri_dir: Path = MRI_DIR
    gan_steps: int | None = None  # --quick: a few steps instead of kimg

    def classifier_spec(self) -> dict:
        """What decides a classifier run besides its training set and seed (part of its cache key)."""
        from ragan.evaluation.classifier import DEFAULT_PATIENCE

        return {
            "classifier": self.classifier,
            "classifier_version": classifier_version(),
            "epochs": self.epochs,
            "patience": DEFAULT_PATIENCE if self.patience is None else self.patience,
            "batch_size": 64,
            "learning_rate": 1e-3,
            "class_weight": "balanced",
        }

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def next_fraction(fraction: float) -> float:
    """The reference row: 5 -> 10 %, 10 -> 25 %, 25 -> 50 % (then doubling)."""
    for low, high in ((0.05, 0.10), (0.10, 0.25), (0.25, 0.50)):
        if math.isclose(fraction, low):
            return high
    return min(1.0, 2 * fraction)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
@dataclass
class Subset:
    """A prepared dataset: a labelled fraction of the train split (or all of it), val and test whole."""

    dataset: str
    fraction: float
    path: Path
    key: str
    class_counts: list
    class_names: list
    test_order: np.ndarray  # indices putting its test split in the base order

    @property
    def num_train(self) -> int:
        return int(sum(self.class_counts))


def nested_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``round(fraction * n_c)`` (at least 2) images of every class ``c``.

    One seeded permutation per class, whatever the fraction: a larger fraction's subset holds every
    smaller one's (labelling more images adds to those already labelled).
    """
    rng = np.random.default_rng(seed)
    kept = []
    for value in np.unique(labels):
        order = rng.permutation(np.flatnonzero(labels == value))
        kept.append(order[: min(order.size, max(2, round(fraction * order.size)))])
    return np.sort(np.concatenate(kept))


def source_digest(dataset: str, settings: Settings) -> str:
    if dataset == "pneumoniamnist":
        return file_digest(settings.pneumonia_npz)
    listing = settings.mri_dir / "MANIFEST.md5"
    if listing.is_file():
        return file_digest(listing)
    files = sorted(p for p in settings.mri_dir.rglob("*") if p.is_file())
    return digest([[str(p.relative_to(settings.mri_dir)), p.stat().st_size] for p in files])


class DataStage:
    """The base splits of a dataset at its image size, and prepared subsets of its train split."""

    def __init__(self, dataset: str, image_size: int, settings: Settings, clock: Clock):
        self.dataset, self.image_size, self.settings, self.clock = dataset, image_size, settings, clock
        self.directory = settings.cache / "data"
        self.base_key = digest(
            {
                "version": STAGE_VERSIONS["data"],
                "dataset": dataset,
                "source": source_digest(dataset, settings),
                "image_size": image_size,
                "val_fraction": settings.mri_val_fraction if dataset == "mri" else None,
            }
        )
        self._base = None
        self._subsets: dict = {}

    def _prepare(self, source, out: Path, **options):
        import ragan

        return ragan.prepare_dataset(
            source, out, image_size=self.image_size, channels=1, seed=0, **options, **quiet(ragan.prepare_dataset)
        )

    def base(self) -> dict:
        """``{"train"|"val"|"test": (uint8 images (N, S, S), int labels)}`` and the class names."""
        if self._base is not None:
            return self._base
        from ragan.data import read_split

        path = self.directory / f"{self.dataset}-{self.image_size}px-base-{self.base_key}.npz"
        with self.clock.stage(f"data {self.dataset} {self.image_size} px: base splits", cached=path.is_file()):
            if not path.is_file():
                work = self.directory / f".work-{self.base_key}"
                if work.exists():
                    import shutil

                    shutil.rmtree(work)
                work.mkdir(parents=True)
                if self.dataset == "pneumoniamnist":
                    # dedupe=False keeps the official splits whole (the test split is 624 images).
                    self._prepare(
                        self.settings.pneumonia_npz, work / "all", dedupe=False, class_names=PNEUMONIA_CLASSES
                    )
                    sources = {"train": (work / "all", "train"), "val": (work / "all", "val")}
                    sources["test"] = (work / "all", "test")
                else:
                    # Testing/ is the test split, whole; val is a stratified share of Training/.
                    val = self.settings.mri_val_fraction
                    self._prepare(self.settings.mri_dir / "Training", work / "training", split=(1 - val, val, 0))
                    self._prepare(self.settings.mri_dir / "Testing", work / "testing", split=(1, 0, 0), dedupe=False)
                    sources = {
                        "train": (work / "training", "train"),
                        "val": (work / "training", "val"),
                        "test": (work / "testing", "train"),
                    }
                arrays, names = {}, None
                for split, (directory, name) in sources.items():
                    data = read_split(directory, name)
                    arrays[f"{split}_images"] = data.images[..., 0]
                    arrays[f"{split}_labels"] = np.asarray(data.labels, np.int64)
                    found = list(data.manifest.class_names)
                    if names is not None and found != names:
                        raise RuntimeError(f"{self.dataset}: class names differ between splits: {names} vs {found}")
                    names = found
                arrays["class_names"] = np.array(names)
                temporary = path.with_name(f".{path.name}.tmp.npz")
                np.savez(temporary, **arrays)
                os.replace(temporary, path)
                import shutil

                shutil.rmtree(work)
        with np.load(path) as data:
            self._base = {key: data[key] for key in data.files}
        return self._base

    def class_names(self) -> list:
        return [str(name) for name in self.base()["class_names"]]

    def subset(self, fraction: float) -> Subset:
        """The prepared dataset keeping ``fraction`` of the train split (1.0: all of it)."""
        if fraction in self._subsets:
            return self._subsets[fraction]
        base = self.base()
        labels = base["train_labels"]
        kept = nested_subset(labels, fraction, self.settings.subset_seed) if fraction < 1 else np.arange(labels.size)
        key = digest(
            {
                "version": STAGE_VERSIONS["data"],
                "base": self.base_key,
                "fraction": fraction,
                "subset_seed": self.settings.subset_seed,
            }
        )
        path = self.directory / f"{self.dataset}-{self.image_size}px-{fraction_tag(fraction)}-{key}"
        names = self.class_names()
        counts = np.bincount(labels[kept], minlength=len(names)).tolist()
        label = f"data {self.dataset} {percent(fraction)} of train ({kept.size} images)"
        with self.clock.stage(label, cached=(path / "manifest.json").is_file()):
            if not (path / "manifest.json").is_file():
                source = self.directory / f".{path.name}.npz"
                np.savez(
                    source,
                    train_images=base["train_images"][kept],
                    train_labels=labels[kept],
                    **{
                        f"{split}_{kind}": base[f"{split}_{kind}"]
                        for split in ("val", "test")
                        for kind in ("images", "labels")
                    },
                )
                try:
                    self._prepare(source, path, dedupe=False, class_names=names)
                finally:
                    source.unlink(missing_ok=True)
        subset = Subset(self.dataset, fraction, path, key, counts, names, self._test_order(path))
        self._subsets[fraction] = subset
        return subset

    def copies_in_train(self, split: str) -> int:
        """How many images of ``split`` have a pixel-identical twin in the train split (at this size)."""
        base = self.base()
        train = {image.tobytes() for image in base["train_images"]}
        return int(sum(image.tobytes() in train for image in base[f"{split}_images"]))

    def _test_order(self, path: Path) -> np.ndarray:
        """Indices putting subset ``path``'s test split in the base test order (checked to be the same images).

        ``prepare_dataset`` orders each split with its seed over the whole input, so two subsets hold
        the same val and test images in different orders; the comparisons pair arms image by image,
        so every arm's test predictions are put in the base order.
        """
        from ragan.data import read_split

        base = self.base()
        order = None
        for split in ("val", "test"):
            data = read_split(path, split)
            mine = _image_keys(data.images[..., 0], data.labels)
            theirs = _image_keys(base[f"{split}_images"], base[f"{split}_labels"])
            if sorted(mine) != sorted(theirs):
                raise RuntimeError(f"{path}: its {split} split holds other images than the base {split} split.")
            if split == "test":
                positions: dict = {}
                for index, key in enumerate(mine):
                    positions.setdefault(key, []).append(index)
                # Identical images (and labels) get identical predictions: any of them will do.
                order = np.array([positions[key].pop() for key in theirs])
        return order


def _image_keys(images: np.ndarray, labels: np.ndarray) -> list:
    return [
        hashlib.sha1(image.tobytes() + int(label).to_bytes(4, "little")).hexdigest()
        for image, label in zip(images, labels)
    ]


# ----------------------------------------------------------------------------------------------
# GANs and generated sets
# ----------------------------------------------------------------------------------------------
@dataclass
class GanRun:
    name: str  # the generator's name in the table (dcgan, sg2, sg2_transfer, ...)
    model: str
    run_dir: Path
    key: str
    spec: dict
    status: str = "not run"
    seconds: float | None = None
    final: dict = field(default_factory=dict)
    error: str | None = None

    def summary(self) -> dict:
        final = {k: self.final.get(k) for k in ("kimg", "augment_p", "real_sign", "d_loss", "g_loss", "sec_per_kimg")}
        return {
            "generator": self.name,
            "model": self.model,
            "status": self.status,
            "run_dir": str(self.run_dir),
            "config": self.spec["config"],
            "kimg": self.spec["kimg"],
            "steps": self.spec.get("steps"),
            "batch_size": self.spec["batch_size"],
            "init_from": self.spec.get("init_from_run"),
            "train_seconds": self.seconds,
            "final": final,
            "error": self.error,
        }


def train_gan(
    name: str, data: Subset, settings: Settings, clock: Clock, *, label: str, kimg: float, config_name: str,
    overrides: dict | None = None, init_from: GanRun | None = None,
) -> GanRun:  # fmt: skip
    """Train (or resume, or find finished) one GAN run in the cache; never raises for a failed run."""
    import ragan

    model, base_config = GAN_CONFIGS[config_name]
    config = {**base_config, **(overrides or {})}
    if settings.quick:
        config.update(QUICK_OVERRIDES[model], **(QUICK_STYLEGAN2_SCHEDULE if model == "stylegan2" else {}))
    batch = GAN_BATCH[model] if not settings.quick else 8
    training = {"batch_size": batch, "seed": settings.gan_seed, "log_every": 25}
    if settings.gan_steps is not None:
        training["steps"] = settings.gan_steps
        training["log_every"] = 1
    else:
        training["kimg"] = kimg
    # A checkpoint about every 2 kimg: a killed run loses at most that much (minutes of StyleGAN2).
    training["checkpoint_every"] = max(1, round(2000 / batch))
    spec = {
        "version": STAGE_VERSIONS["gan"],
        "model": model,
        "config": config,
        "kimg": None if settings.gan_steps is not None else kimg,
        "steps": settings.gan_steps,
        "batch_size": batch,
        "seed": settings.gan_seed,
        "data": data.key,
        "init_from": init_from.key if init_from is not None else None,
        "init_from_run": str(init_from.run_dir) if init_from is not None else None,
    }
    key = digest({k: v for k, v in spec.items() if k != "init_from_run"})
    run_dir = settings.cache / "gans" / data.dataset / f"{name}-{fraction_tag(data.fraction)}-{key}"
    run = GanRun(name=name, model=model, run_dir=run_dir, key=key, spec=spec)
    if init_from is not None and init_from.status != "finished":
        run.status, run.error = "skipped", f"its pretrained network ({init_from.name}) did not finish"
        clock.say(f"{label}: skipped ({run.error})")
        return run
    finished = _finished_run(run_dir)
    begin = time.perf_counter()
    try:
        with clock.stage(label, cached=finished):
            if not finished:
                write_json(settings.cache / "gans" / data.dataset / f"{run_dir.name}.spec.json", spec)
                accepted = inspect.signature(ragan.train).parameters
                extra = {"progress": not settings.quick} if "progress" in accepted else {}
                if "tracking_uri" in accepted and not os.environ.get("MLFLOW_TRACKING_URI"):
                    # One MLflow store for every run of the table (and one database set-up, not one per run).
                    extra["tracking_uri"] = f"sqlite:///{(settings.cache / 'mlflow.db').resolve()}"
                ragan.train(
                    model,
                    data=data.path,
                    out=run_dir,
                    config=config,
                    train_config=training,
                    resume="auto",
                    init_from=str(init_from.run_dir) if init_from is not None else None,
                    experiment="low-data",
                    **extra,
                )
    except Exception as error:  # noqa: BLE001 - one failed GAN must not end a run of hours
        run.status, run.error = "failed", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return run
    finally:
        _release_memory()
    info = read_json(run_dir / "run.json")
    run.status = info.get("status", "unknown")
    run.final = dict(info.get("last_tick") or {})
    run.final.setdefault("kimg", info.get("kimg"))
    if finished:
        run.seconds = _stored_seconds(run_dir)
    else:  # the session that finished it (a resumed run's earlier sessions are not counted)
        run.seconds = round(time.perf_counter() - begin, 1)
        write_json(run_dir.parent / f"{run_dir.name}.seconds.json", {"seconds": run.seconds})
    p, sign = run.final.get("augment_p"), run.final.get("real_sign")
    clock.say(
        f"  {name}: {info.get('kimg')} kimg; end state: "
        + (f"augment p {p:.3f}, " if p is not None else "")
        + (f"E[sign(D(real))] {sign:+.3f}" if sign is not None else "E[sign(D(real))] not logged")
    )
    return run


def _finished_run(run_dir: Path) -> bool:
    run_file = run_dir / "run.json"
    if not run_file.is_file():
        return False
    info = read_json(run_file)
    return info.get("status") == "finished" and (run_dir / info.get("model", "model.keras")).is_file()


def _stored_seconds(run_dir: Path):
    path = run_dir.parent / f"{run_dir.name}.seconds.json"
    return read_json(path)["seconds"] if path.is_file() else None


def _release_memory() -> None:
    """Free the last run's graphs before the next (one process trains many networks)."""
    from ragan._tf import import_keras

    import_keras().backend.clear_session()
    gc.collect()


@dataclass
class SyntheticSet:
    generator: str
    recipe: str
    path: Path | None
    key: str
    multiplier: float
    truncation: float | None
    filter_threshold: float | None
    error: str | None = None
    num_generated: int | None = None


def generate_set(
    gan: GanRun, data: Subset, settings: Settings, clock: Clock, *, recipe: str, multiplier: float,
    truncation: float | None = None, filter_threshold: float | None = None,
) -> SyntheticSet:  # fmt: skip
    """Generate ``multiplier`` x the real count of every class with ``gan`` (cached); never raises for a failed set."""
    import ragan

    per_class = [int(round(multiplier * n)) for n in data.class_counts]
    spec = {
        "version": STAGE_VERSIONS["synthetic"],
        "gan": gan.key,
        "per_class": per_class,
        "truncation": truncation,
        "filter_threshold": filter_threshold,
        "seed": settings.generation_seed,
    }
    key = digest(spec)
    path = settings.cache / "synthetic" / data.dataset / f"{gan.name}-{fraction_tag(data.fraction)}-{recipe}-{key}"
    result = SyntheticSet(gan.name, recipe, path, key, multiplier, truncation, filter_threshold)
    if gan.status != "finished":
        result.path, result.error = None, f"{gan.name} did not finish ({gan.status})"
        return result
    done = (path / "manifest.json").is_file()
    labels = [c for c, count in enumerate(per_class) for _ in range(count)]
    label = f"generate {gan.name} {percent(data.fraction)} {recipe}: {len(labels)} images"
    failed = path.parent / f"{path.name}.failed.json"
    if failed.is_file():  # ragan refused it before (the filter kept too few): the same inputs, the same answer
        result.path, result.error = None, read_json(failed)["error"]
        clock.say(f"{label}: cached failure ({result.error})")
        return result
    try:
        with clock.stage(label, cached=done):
            if not done:
                generated = ragan.generate(
                    gan.run_dir,
                    len(labels),
                    path,
                    format="tfrecord",
                    labels=labels,
                    seed=settings.generation_seed,
                    truncation=truncation,
                    filter_threshold=filter_threshold,
                    overwrite=True,
                    **quiet(ragan.generate),
                    # The filter may keep few images: try up to 50x the count before giving up on the arm.
                    **({"max_attempts": FILTER_ATTEMPTS} if filter_threshold is not None else {}),
                )
                write_json(path.parent / f"{path.name}.json", {"num_generated": int(generated.num_generated)})
    except Exception as error:  # noqa: BLE001 - e.g. the filter kept too few images: an arm is missing, not the table
        result.path, result.error = None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        from ragan.errors import RaganError

        if isinstance(error, RaganError):  # ragan's own refusal is deterministic; anything else is retried
            write_json(failed, {"error": result.error})
        return result
    finally:
        _release_memory()
    record = path.parent / f"{path.name}.json"
    result.num_generated = read_json(record)["num_generated"] if record.is_file() else None
    return result


# ----------------------------------------------------------------------------------------------
# Classifier runs
# ----------------------------------------------------------------------------------------------
@dataclass
class Arm:
    """One arm of a row: its cached runs (one per seed) and what it is."""

    name: str
    kind: str  # real, real_aug, count_matched, real+synthetic, synthetic_only
    title: str
    generator: str | None = None
    recipe: str | None = None
    multiplier: float | None = None
    fraction: float | None = None  # the labelled fraction its real images come from
    control: str | None = None
    result: object = None  # ragan's ArmResult, renamed
    test_labels: np.ndarray | None = None
    error: str | None = None


def synthetic_fraction_of(multiplier: float) -> float:
    """The study's synthetic fraction f for ``multiplier`` x the real count: f / (1 - f) = multiplier."""
    return multiplier / (1.0 + multiplier)


SYNTHETIC_KINDS = ("real+synthetic", "synthetic_only", "count_matched")


def _study_arm_name(arm: Arm) -> str:
    """The name :func:`classifier_study` gives the arm (``real+synthetic@0.5``, ``synthetic_only``...)."""
    if arm.kind in ("real+synthetic", "count_matched"):
        return f"{arm.kind}@{synthetic_fraction_of(arm.multiplier):g}"
    return arm.kind


def run_arms(arms: list, data: Subset, settings: Settings, clock: Clock, synthetic: SyntheticSet | None = None) -> list:
    """The arms' classifier runs: one cache file per arm and seed; what is missing runs in one study call.

    Arms of one call share the real subset and the synthetic set (one data load, one traced classifier).
    """
    from ragan.evaluation.study_result import ArmResult

    names = ", ".join(arm.name for arm in arms)
    where = f"classifier {data.dataset} {percent(data.fraction)}"
    if any(arm.kind in SYNTHETIC_KINDS for arm in arms) and (synthetic is None or synthetic.path is None):
        error = synthetic.error if synthetic is not None else "no synthetic set"
        for arm in arms:
            arm.error = error
        clock.say(f"{where} {names}: not run ({error})")
        return arms
    files, missing, refused = {}, {}, {}
    for arm in arms:
        spec = {
            "version": STAGE_VERSIONS["classifier"],
            "classifier": settings.classifier_spec(),
            "data": data.key,
            "kind": arm.kind,
            # The control's images are real only: its key leaves the synthetic set out, so generators share it.
            "synthetic": synthetic.key if synthetic is not None and arm.kind in SYNTHETIC_KINDS[:2] else None,
            "synthetic_fraction": synthetic_fraction_of(arm.multiplier) if arm.multiplier else None,
        }
        # Named by what it trains on, not by the arm's title: the 5 % row's "real at 10 %" reference is
        # the 10 % row's "real" arm, run once.
        readable = arm.kind.replace("+", "_") + (f"-{arm.multiplier:g}x" if arm.multiplier else "")
        directory = (
            settings.cache / "classifier" / data.dataset / f"{fraction_tag(data.fraction)}-{readable}-{digest(spec)}"
        )
        files[arm.name] = {seed: directory / f"seed{seed}.json" for seed in settings.seeds}
        refused[arm.name] = directory / "refused.json"
        if refused[arm.name].is_file():  # ragan refused it before: the same inputs, the same answer
            arm.error = read_json(refused[arm.name])["error"]
            clock.say(f"{where} {arm.name}: cached refusal ({arm.error})")
        missing[arm.name] = [seed for seed, path in files[arm.name].items() if not path.is_file()]
        if missing[arm.name] and arm.error is None:
            write_json(directory / "spec.json", spec)
    arms_run = [arm for arm in arms if arm.error is None]
    todo = [arm for arm in arms_run if missing[arm.name]]
    seeds = sorted({seed for arm in todo for seed in missing[arm.name]})
    label = f"{where} {names} ({len(settings.seeds)} seeds" + (f", {len(todo)} x {len(seeds)} runs)" if todo else ")")
    from ragan.errors import RaganError

    try:
        _run_study(todo, seeds, missing, files, data, settings, clock, synthetic, label)
    except RaganError as error:  # e.g. the filter kept too few images of a class: the arms are missing, not the table
        message = f"RaganError: {str(error).splitlines()[0] if str(error) else ''}"
        for arm in todo:
            arm.error = message
            write_json(refused[arm.name], {"error": message})
        arms_run = [arm for arm in arms_run if arm.error is None]
    for arm in arms_run:
        records = [read_json(files[arm.name][seed]) for seed in settings.seeds]
        fields = dict(records[0]["arm"])
        runs = []
        for record in records:
            run = dict(record["run"])
            # In the base test order, as every arm of every subset (the comparisons pair images).
            run["test_probabilities"] = np.asarray(run["test_probabilities"], dtype=np.float64)[data.test_order]
            runs.append(run)
        fields.update(name=arm.name, control=arm.control, runs=runs)
        arm.result = ArmResult(**fields)
        arm.test_labels = np.asarray(records[0]["test_labels"])[data.test_order]
    return arms


def _run_study(todo, seeds, missing, files, data, settings, clock, synthetic, label) -> None:
    """One classifier_study call for the arms' missing seeds; each run is written to its cache file."""
    from ragan.evaluation.study import classifier_study

    with clock.stage(label, cached=not todo):
        if todo:
            options = settings.classifier_spec()
            fractions = sorted(
                {synthetic_fraction_of(a.multiplier) for a in todo if a.kind in ("real+synthetic", "count_matched")}
            )
            study = classifier_study(
                data.path,
                synthetic.path if any(arm.kind in SYNTHETIC_KINDS for arm in todo) else None,
                arms=tuple(dict.fromkeys(arm.kind for arm in todo)),
                synthetic_fractions=fractions or (0.5,),
                seeds=seeds,
                classifier=options["classifier"],
                epochs=options["epochs"],
                batch_size=options["batch_size"],
                learning_rate=options["learning_rate"],
                patience=options["patience"],
                class_weight=options["class_weight"],
                effect_size=settings.effect_size,
                **quiet(classifier_study),
            )
            test_labels = [int(v) for v in study.test_labels]
            for arm in todo:
                fields = study.arm(_study_arm_name(arm)).to_dict()
                fields.pop("summary", None)
                for run in fields.pop("runs"):
                    if run["seed"] in missing[arm.name]:
                        write_json(
                            files[arm.name][run["seed"]], {"arm": fields, "run": run, "test_labels": test_labels}
                        )
            _release_memory()


# ----------------------------------------------------------------------------------------------
# Statistics of a row
# ----------------------------------------------------------------------------------------------
def mean_val_auc(arm: Arm) -> float | None:
    if arm.result is None:
        return None
    values = [run.get("best_val_auc") for run in arm.result.runs if run.get("best_val_auc") is not None]
    return float(np.mean(values)) if values else None


def row_statistics(arms: list, reference: Arm | None, settings: Settings) -> dict:
    """Summaries with their 95 % intervals, the study's comparisons and verdicts (its learning check
    included), and every arm's comparison with the next fraction's real arm."""
    from ragan.evaluation.statistics import NO_VERDICT, metric_interval, paired_difference, verdict_line
    from ragan.evaluation.study_result import StudyResult

    present = [arm for arm in arms if arm.result is not None]
    if not present:
        return {"arms": [], "comparisons": [], "verdicts": []}
    labels = present[0].test_labels
    has_reference = reference is not None and reference.result is not None
    study = StudyResult(
        # The reference arm rides along for the learning check; the study compares synthetic arms only.
        arms=[arm.result for arm in present] + ([reference.result] if has_reference else []),
        settings={"seeds": list(settings.seeds), "effect_size": settings.effect_size},
        data={"test": {"num_examples": int(labels.size)}},
        test_labels=labels,
    )
    comparisons = list(study.comparisons("auc"))
    verdicts = study.verdicts()
    learning = study.learning()
    if has_reference:
        theirs = {run["seed"]: run for run in reference.result.runs}
        for arm in present:
            if arm.kind not in ("real+synthetic", "synthetic_only", "real", "real_aug"):
                continue
            mine = {run["seed"]: run for run in arm.result.runs}
            seeds = [s for s in mine if s in theirs]
            entry = paired_difference(
                labels,
                [mine[s]["test_probabilities"] for s in seeds],
                [theirs[s]["test_probabilities"] for s in seeds],
                effect_size=settings.effect_size,
            )
            entry = {k: v for k, v in entry.items() if k != "per_seed"}
            entry.update(arm=arm.name, baseline=reference.name, seeds=seeds)
            # As the study rules: no verdict against a baseline that learned nothing, and an arm
            # that learned nothing never helps.
            not_learned = [
                name for name in (arm.name, reference.name) if not learning.get(name, {}).get("learned", True)
            ]
            if not_learned:
                entry["not_learned"] = not_learned
                if reference.name in not_learned or entry["verdict"] == "helps":
                    entry["verdict"] = NO_VERDICT
            entry["verdict_line"] = verdict_line(entry)
            comparisons.append(entry)
    summaries = []
    for arm in [*present, *([reference] if reference is not None and reference.result is not None else [])]:
        auc = arm.result.summary().get("auc", {})
        interval = metric_interval(labels, [run["test_probabilities"] for run in arm.result.runs])
        low, high = interval["ci_low"], interval["ci_high"]
        summaries.append(
            {
                "name": arm.name,
                "title": arm.title,
                "kind": arm.kind,
                "generator": arm.generator,
                "recipe": arm.recipe,
                "multiplier": arm.multiplier,
                "fraction": arm.fraction,
                "control": arm.control,
                "num_train": arm.result.num_train,
                "composition": arm.result.composition,
                "class_counts": arm.result.class_counts,
                "auc_mean": auc.get("mean"),
                "auc_std": auc.get("std"),
                "auc_ci_low": low,
                "auc_ci_high": high,
                "val_auc_mean": mean_val_auc(arm),
                "learned": learning.get(arm.name, {}).get("learned"),
                "runs": [
                    {
                        "seed": run["seed"],
                        "auc": run["metrics"].get("auc"),
                        "accuracy": run["metrics"].get("accuracy"),
                        "best_val_auc": run.get("best_val_auc"),
                        "epochs_trained": run.get("epochs_trained"),
                        "seconds": run.get("seconds"),
                    }
                    for run in arm.result.runs
                ],
            }
        )
    missing = [{"name": arm.name, "error": arm.error} for arm in arms if arm.result is None]
    return {"arms": summaries, "missing_arms": missing, "comparisons": comparisons, "verdicts": verdicts}


# ----------------------------------------------------------------------------------------------
# A row: one dataset at one labelled fraction
# ----------------------------------------------------------------------------------------------
class Experiment:
    """The whole table, stage by stage, in the order of the module documentation."""

    def __init__(self, settings: Settings, clock: Clock):
        self.settings, self.clock = settings, clock
        # decided on the first row of the first dataset, or given (--freeze-d-choice: an earlier run decided it)
        self.freeze_choice: int | None = settings.freeze_d_choice
        self.first_row_done = settings.freeze_d_choice is not None
        self.results: dict = {"datasets": {}}

    def image_size(self, dataset: str) -> int:
        if dataset == "pneumoniamnist" or self.settings.quick:
            return self.settings.image_size
        size, at64 = mri_size(self.settings)
        self.clock.say(
            f"MRI at {size} px (its row's estimate at 64 px: {at64 / 3600:.1f} h; "
            f"allowed {self.settings.mri_hours:g} h)"
        )
        return size

    def run(self) -> dict:
        stages = {}
        # Every dataset's data first: a problem with a later dataset shows in minutes, not hours.
        for dataset in self.settings.datasets:
            stage = DataStage(dataset, self.image_size(dataset), self.settings, self.clock)
            fractions = self.fractions(dataset)
            for fraction in sorted({*fractions, *(next_fraction(f) for f in fractions), 1.0}):
                stage.subset(fraction)
            stages[dataset] = stage
        for dataset in self.settings.datasets:
            self.run_dataset(stages[dataset])
        return self.results

    def fractions(self, dataset: str) -> list:
        return list(self.settings.fractions) if dataset == "pneumoniamnist" else [self.settings.mri_fraction]

    def run_dataset(self, stage: DataStage) -> None:
        settings = self.settings
        everything = stage.subset(1.0)
        pretrained = train_gan(
            "pretrain",
            everything,
            settings,
            self.clock,
            label=f"gan {stage.dataset}: StyleGAN2 small pretrained without labels on all {everything.num_train} "
            f"training images ({budget(settings, settings.pretrain_kimg)})",
            kimg=settings.pretrain_kimg,
            config_name="pretrain",
        )
        record = {
            "image_size": stage.image_size,
            "class_names": stage.class_names(),
            "num_train_all": everything.num_train,
            "num_val": int(stage.base()["val_labels"].size),
            "num_test": int(stage.base()["test_labels"].size),
            "test_class_counts": np.bincount(stage.base()["test_labels"]).tolist(),
            # Reported, not removed (the official test split stays whole): identical pixels in train and test.
            "test_images_also_in_train": stage.copies_in_train("test"),
            "val_images_also_in_train": stage.copies_in_train("val"),
            "pretraining": pretrained.summary(),
            "rows": [],
        }
        self.results["datasets"][stage.dataset] = record
        for fraction in self.fractions(stage.dataset):
            record["rows"].append(self.run_row(stage, fraction, pretrained))
            self.first_row_done = True

    def run_row(self, stage: DataStage, fraction: float, pretrained: GanRun) -> dict:
        settings, clock = self.settings, self.clock
        data = stage.subset(fraction)
        upper = next_fraction(fraction)
        first_row = not self.first_row_done
        where = f"{stage.dataset} {percent(fraction)}"
        clock.say(f"=== {where}: {data.num_train} labelled images {dict(zip(data.class_names, data.class_counts))} ===")
        row = {
            "fraction": fraction,
            "num_labelled": data.num_train,
            "class_counts": dict(zip(data.class_names, data.class_counts)),
            "next_fraction": upper,
            "gan_kimg": settings.kimg,
            "gans": {},
            "choices": {},
            "notes": [],
        }
        if settings.freeze_d_choice is not None:
            row["notes"].append(
                f"sg2_transfer with freeze_d={settings.freeze_d_choice}, chosen by an earlier run's first row "
                "(--freeze-d-choice): Freeze-D and the fixed-augmentation variant were not trained again"
            )
        arms: list = []
        # Real-image arms first: the yardsticks are on disk within minutes.
        arms += run_arms(
            [Arm("real", "real", "real only", fraction=fraction),
             Arm("real_aug", "real_aug", "real + standard augmentation", fraction=fraction)],
            data, settings, clock,
        )  # fmt: skip
        title = f"real only, {percent(upper)} labelled (the next fraction)"
        (reference,) = run_arms(
            [Arm(f"real@{pct(upper)}", "real", title, fraction=upper)], stage.subset(upper), settings, clock
        )
        gans = self.train_generators(stage, data, pretrained, row, first_row)
        # One 3x set per generator: its 1x arm draws from it, its synthetic-only arm trains on all of it.
        most = max(settings.counts)
        sets = {
            name: generate_set(run, data, settings, clock, recipe=f"psi1-{most:g}x", multiplier=most)
            for name, run in gans.items()
        }
        # The controls repeat real images only; any synthetic set serves the study's count checks.
        control_source = next((s for s in sets.values() if s.path is not None), None)
        arms += run_arms(
            [Arm(f"count_matched@{m:g}x", "count_matched", f"count-matched control: {m:g}x repeated, augmented real",
                 multiplier=m, fraction=fraction) for m in settings.counts],
            data, settings, clock, control_source,
        )  # fmt: skip
        one_x = {}
        for name, synthetic in sets.items():
            title = GENERATOR_TITLES.get(name, name)
            pair = run_arms(
                [Arm(f"{name}+syn@1x", "real+synthetic", f"real + {title} (1x)", generator=name,
                     recipe="psi 1, no filter, 1x", multiplier=1.0, fraction=fraction, control="count_matched@1x"),
                 Arm(f"{name}:synthetic_only", "synthetic_only", f"{title} images only ({most:g}x)", generator=name,
                     recipe=f"psi 1, no filter, {most:g}x", multiplier=most, fraction=fraction)],
                data, settings, clock, synthetic,
            )  # fmt: skip
            one_x[name] = pair[0]
            arms += pair
        best = self.choose(row, one_x, first_row)
        if best is not None:
            arms += self.recipes(best, gans[best], sets[best], data)
        row["synthetic_sets"] = [
            {"generator": s.generator, "recipe": s.recipe, "path": str(s.path) if s.path else None,
             "num_generated": s.num_generated, "error": s.error}
            for s in sets.values()
        ]  # fmt: skip
        row.update(row_statistics(arms, reference, settings))
        return row

    def train_generators(self, stage: DataStage, data: Subset, pretrained: GanRun, row: dict, first_row: bool) -> dict:
        """The row's GAN runs (see the module documentation); their end states go into ``row``."""
        settings, clock = self.settings, self.clock
        where, kimg = f"{stage.dataset} {percent(data.fraction)}", settings.kimg
        gans = {
            "dcgan": train_gan(
                "dcgan", data, settings, clock, label=f"gan {where}: dcgan", kimg=kimg, config_name="dcgan"
            ),
            "sg2": train_gan("sg2", data, settings, clock, label=f"gan {where}: sg2", kimg=kimg, config_name="sg2"),
        }
        freeze_options = [0, settings.freeze_d] if first_row or self.freeze_choice is None else [self.freeze_choice]
        for freeze in freeze_options:
            name = "sg2_transfer_freezed" if freeze and len(freeze_options) > 1 else "sg2_transfer"
            gans[name] = train_gan(
                name, data, settings, clock, kimg=kimg, config_name="sg2_transfer", overrides={"freeze_d": freeze},
                label=f"gan {where}: {name} (from the pretrained network, freeze_d={freeze})", init_from=pretrained,
            )  # fmt: skip
        scratch = gans["sg2"]
        sign, p = scratch.final.get("real_sign"), scratch.final.get("augment_p")
        if settings.quick:
            pass  # a few steps tell nothing about ADA; --quick trains no fixed-augmentation variant
        elif first_row and scratch.status == "finished" and sign is not None and sign < ADA_TARGET:
            row["notes"].append(
                f"sg2 ended with E[sign(D(real))] = {sign:+.3f}, below ADA's target {ADA_TARGET} (p {p}): "
                f"also trained with augment=fixed, p={settings.fixed_augment_p}"
            )
            gans["sg2_fixed_aug"] = train_gan(
                "sg2_fixed_aug", data, settings, clock, kimg=kimg, config_name="sg2_fixed_aug",
                overrides={"augment_p": settings.fixed_augment_p},
                label=f"gan {where}: sg2_fixed_aug (augment fixed, p={settings.fixed_augment_p})",
            )  # fmt: skip
        elif first_row and sign is not None:
            row["notes"].append(
                f"sg2 ended with E[sign(D(real))] = {sign:+.3f}, at or above ADA's target {ADA_TARGET} (p {p}): "
                "ADA was adapting p, so no fixed-augmentation variant was trained"
            )
        row["gans"] = {name: run.summary() for name, run in gans.items()}
        return gans

    def choose(self, row: dict, one_x: dict, first_row: bool) -> str | None:
        """Freeze-D (first row) and the row's best generator, by mean validation AUC of the 1x arm; never by test."""
        by = "mean validation AUC (the real val split) of the real + synthetic 1x arm over seeds"
        val = {name: mean_val_auc(arm) for name, arm in one_x.items()}
        if first_row and "sg2_transfer_freezed" in one_x:
            plain, frozen = val.get("sg2_transfer"), val.get("sg2_transfer_freezed")
            if plain is not None or frozen is not None:
                self.freeze_choice = self.settings.freeze_d if (frozen or -1) > (plain or -1) else 0
            row["choices"]["freeze_d"] = {
                "chosen": self.freeze_choice,
                "by": by,
                "val_auc": {"freeze_d=0": plain, f"freeze_d={self.settings.freeze_d}": frozen},
                "used_for": "sg2_transfer in the later rows",
            }
        freezed = "sg2_transfer_freezed" in one_x and self.freeze_choice
        row["transfer_generator"] = "sg2_transfer_freezed" if freezed else "sg2_transfer"
        candidates = {name: value for name, value in val.items() if value is not None}
        best = max(candidates, key=candidates.get) if candidates else None
        row["choices"]["best_generator"] = {"chosen": best, "by": by, "val_auc": val}
        if best is not None:
            self.clock.say(f"best generator of the row by validation AUC: {best} ({candidates[best]:.4f})")
        return best

    def recipes(self, best: str, gan: GanRun, default_set: SyntheticSet, data: Subset) -> list:
        """The generation recipes of the row's best generator, one change at a time from psi 1, no filter, 1x."""
        settings, clock = self.settings, self.clock
        psi, threshold = settings.truncation, settings.filter_threshold
        title = GENERATOR_TITLES.get(best, best)

        def arm(name, recipe, multiplier):
            control = f"count_matched@{multiplier:g}x"
            return Arm(name, "real+synthetic", f"real + {title} ({recipe})", generator=best, recipe=recipe,
                       multiplier=multiplier, fraction=data.fraction, control=control)  # fmt: skip

        arms = []
        truncated = generate_set(gan, data, settings, clock, recipe=f"psi{psi:g}-1x", multiplier=1.0, truncation=psi)
        arms += run_arms(
            [arm(f"{best}+syn@1x psi{psi:g}", f"truncation {psi:g}", 1.0)], data, settings, clock, truncated
        )
        filtered = generate_set(
            gan, data, settings, clock, recipe=f"filter{threshold:g}-1x", multiplier=1.0, filter_threshold=threshold
        )
        arms += run_arms(
            [arm(f"{best}+syn@1x filter{threshold:g}", f"D filter >= {threshold:g}", 1.0)],
            data,
            settings,
            clock,
            filtered,
        )
        counts = [m for m in settings.counts if m != 1.0]
        arms += run_arms([arm(f"{best}+syn@{m:g}x", f"{m:g}x", m) for m in counts], data, settings, clock, default_set)
        return arms


# ----------------------------------------------------------------------------------------------
# Estimate
# ----------------------------------------------------------------------------------------------
def source_class_counts(dataset: str, settings: Settings) -> list:
    """Per-class training images before any preparation (for the estimate)."""
    if dataset == "pneumoniamnist":
        with np.load(settings.pneumonia_npz) as data:
            return np.bincount(data["train_labels"].reshape(-1)).tolist()
    folders = sorted(p for p in (settings.mri_dir / "Training").iterdir() if p.is_dir())
    counts = [sum(1 for f in folder.iterdir() if f.is_file()) for folder in folders]
    return [round(c * (1 - settings.mri_val_fraction)) for c in counts]


def load_costs(settings: Settings) -> str:
    """Use CACHE/costs.json (from ``--measure-costs``) when it exists; return where the costs come from."""
    path = settings.cache / "costs.json"
    if path.is_file():
        measured = read_json(path)
        COSTS.update(measured["costs"])
        return f"costs measured {measured['measured_at']} (load {measured['load']}), {path}"
    return BUILT_IN_COSTS_NOTE


def _size_key(image_size: int) -> str:
    return "64" if image_size > 32 else "32"


def classifier_seconds(num_train: int, image_size: int) -> float:
    size = _size_key(image_size)
    epoch = COSTS["classifier_per_epoch_s"][size] + COSTS["classifier_per_kimg_epoch_s"][size] * num_train / 1000
    return COSTS["classifier_epochs"] * epoch


def gan_seconds(model: str, kimg: float, image_size: int) -> float:
    key = f"{model}@{_size_key(image_size)}"
    return COSTS["gan_start_s"][key] + kimg * COSTS["gan_s_per_kimg"][key]


def generate_seconds(images: int, image_size: int) -> float:
    scale = (image_size / 32) ** 2
    return COSTS["generate_start_s"] + COSTS["generate_per_kimg_s"] * images / 1000 * scale


def estimate_dataset(dataset: str, image_size: int, settings: Settings) -> dict:
    """Seconds per kind of stage for one dataset's rows (the worst case: every conditional run included)."""
    counts = source_class_counts(dataset, settings)
    fractions = list(settings.fractions) if dataset == "pneumoniamnist" else [settings.mri_fraction]
    seeds, kimg, most = len(settings.seeds), settings.kimg, max(settings.counts)
    lines = [
        (f"{dataset}: pretraining, StyleGAN2 small, {settings.pretrain_kimg:g} kimg", 1,
         gan_seconds("stylegan2", settings.pretrain_kimg, image_size)),
    ]  # fmt: skip
    for index, fraction in enumerate(fractions):
        n = sum(min(c, max(2, round(fraction * c))) for c in counts)
        upper = sum(min(c, max(2, round(next_fraction(fraction) * c))) for c in counts)
        # The first row of the first dataset also trains the Freeze-D variant and, when ADA's heuristic
        # stays below its target, the fixed-augmentation one (counted here: the worst case).
        first = index == 0 and dataset == settings.datasets[0] and settings.freeze_d_choice is None
        sg2_runs = 2 + (1 if first else 0) + (1 if first and not settings.quick else 0)
        generators = 1 + sg2_runs
        where = f"{dataset} {percent(fraction)} (n={n})"

        def runs(images):
            return classifier_seconds(images, image_size)

        lines += [
            (f"{where}: dcgan, {kimg:g} kimg", 1, gan_seconds("dcgan", kimg, image_size)),
            (f"{where}: StyleGAN2 small, {kimg:g} kimg each", sg2_runs, gan_seconds("stylegan2", kimg, image_size)),
            (f"{where}: generate the {most:g}x sets", generators, generate_seconds(int(most * n), image_size)),
            (f"{where}: generate the best generator's truncated and filtered sets", 1,
             generate_seconds(n, image_size) + generate_seconds(int(n / COSTS["filter_acceptance"]), image_size)),
            (f"{where}: classifier_study calls (data, tracing)", 6 + generators, COSTS["classifier_call_s"]),
            (f"{where}: classifier real, real_aug", 2 * seeds, runs(n)),
            (f"{where}: classifier real at {percent(next_fraction(fraction))}", seeds, runs(upper)),
            (f"{where}: classifier count-matched 0.5x, recipe 0.5x", 2 * seeds, runs(int(1.5 * n))),
            (f"{where}: classifier count-matched 1x, real+syn 1x, psi, filter", (3 + generators) * seeds, runs(2 * n)),
            (f"{where}: classifier count-matched 3x, recipe 3x", 2 * seeds, runs(4 * n)),
            (f"{where}: classifier synthetic only ({most:g}x)", generators * seeds, runs(int(most * n))),
        ]  # fmt: skip
    total = sum(count * each for _, count, each in lines)
    return {"dataset": dataset, "image_size": image_size, "lines": lines, "total_seconds": total}


def mri_size(settings: Settings) -> tuple[int, float]:
    """The MRI row's image size: 64 px when its estimate fits ``--mri-hours`` (unless ``--mri-size``)."""
    at64 = estimate_dataset("mri", 64, settings)["total_seconds"]
    if settings.mri_size is not None:
        return settings.mri_size, at64
    return (64 if at64 <= settings.mri_hours * 3600 else 32), at64


def print_estimate(settings: Settings) -> float:
    print(f"Estimate ({load_costs(settings)}):")
    grand = 0.0
    for dataset in settings.datasets:
        size = settings.image_size
        if dataset == "mri":
            size, at64 = mri_size(settings)
            print(
                f"  MRI row at 64 px: {at64 / 3600:.1f} h (allowed {settings.mri_hours:g} h) -> {size} px"
                + (" (--mri-size)" if settings.mri_size else "")
            )
        estimate = estimate_dataset(dataset, size, settings)
        for what, count, each in estimate["lines"]:
            print(f"  {what:<86} {count:>3} x {each:>6.0f} s = {count * each / 3600:5.2f} h")
        print(f"  {dataset} at {size} px: {estimate['total_seconds'] / 3600:.1f} h")
        grand += estimate["total_seconds"]
    print(f"  all: {grand / 3600:.1f} h of the two cores (stages already in the cache take no time)")
    return grand


def measure_costs(settings: Settings, clock: Clock) -> dict:
    """Time the pieces on this machine now (PneumoniaMNIST, one seed) and write CACHE/costs.json.

    StyleGAN2 small and DCGAN run 3 ticks at 32 and 64 px (the first tick traces the step
    functions: the start cost; the last is the steady s/kimg); the classifier runs on 5 % and
    25 % and on 4x 25 % (count-matched 3x), at 32 px, and on 5 % at 64 px; generation writes
    1,000 images.
    """
    import ragan
    from ragan.evaluation.study import classifier_study

    measured = {
        "gan_s_per_kimg": {},
        "gan_start_s": {},
        "classifier_per_epoch_s": {},
        "classifier_per_kimg_epoch_s": {},
    }
    runs = {}
    for size in (32, 64):
        stage = DataStage("pneumoniamnist", size, settings, clock)
        small = stage.subset(0.05)
        for model, config_name in (("stylegan2", "sg2"), ("dcgan", "dcgan")):
            kimg = 3 * 25 * GAN_BATCH[model] / 1000
            run = train_gan(f"cost-{model}", small, settings, clock, label=f"cost: {model} {size} px, 3 ticks",
                            kimg=kimg, config_name=config_name)  # fmt: skip
            if run.status != "finished":
                raise RuntimeError(f"cost: the {model} run at {size} px did not finish: {run.error}")
            steady = run.final["sec_per_kimg"]
            measured["gan_s_per_kimg"][f"{model}@{size}"] = round(steady, 2)
            measured["gan_start_s"][f"{model}@{size}"] = round(max(run.seconds - kimg * steady, 0.0), 1)
            runs[(model, size)] = run
        # Classifier seconds per epoch against training images: a line through the measured runs.
        points = []
        options = settings.classifier_spec()
        cases = [(small, ("real",), (0.5,))]
        if size == 32:
            large = stage.subset(0.25)
            cases += [(large, ("real",), (0.5,)), (large, ("count_matched",), (0.75,))]
        for data, arms, fractions in cases:
            synthetic = None
            if arms == ("count_matched",):
                synthetic = generate_set(runs[("stylegan2", size)], data, settings, clock, recipe="cost-3x",
                                         multiplier=3.0)  # fmt: skip
            begin = time.perf_counter()
            with clock.stage(f"cost: classifier {arms[0]} on {percent(data.fraction)} at {size} px", cached=False):
                study = classifier_study(
                    data.path, synthetic.path if synthetic else None, arms=arms, synthetic_fractions=fractions,
                    seeds=(0,), classifier=options["classifier"], epochs=options["epochs"],
                    batch_size=options["batch_size"], learning_rate=options["learning_rate"],
                    patience=options["patience"], class_weight=options["class_weight"], **quiet(classifier_study),
                )  # fmt: skip
            run = study.arms[0].runs[0]
            points.append((study.arms[0].num_train, run["seconds"] / run["epochs_trained"], run["epochs_trained"]))
            measured.setdefault("classifier_call_s_samples", []).append(time.perf_counter() - begin - run["seconds"])
        if len(points) > 1:
            slope, intercept = np.polyfit([n / 1000 for n, _, _ in points], [t for _, t, _ in points], 1)
        else:  # 64 px: one point; the 32 px split between fixed and per-image cost, scaled
            ratio = points[0][1] / (
                measured["classifier_per_epoch_s"]["32"]
                + measured["classifier_per_kimg_epoch_s"]["32"] * points[0][0] / 1000
            )
            slope, intercept = (
                measured["classifier_per_kimg_epoch_s"]["32"] * ratio,
                measured["classifier_per_epoch_s"]["32"] * ratio,
            )
        measured["classifier_per_epoch_s"][str(size)] = round(max(float(intercept), 0.0), 3)
        measured["classifier_per_kimg_epoch_s"][str(size)] = round(max(float(slope), 0.0), 3)
        measured.setdefault("classifier_epochs_samples", []).extend(e for _, _, e in points)
        measured.setdefault("classifier_points", []).extend([size, n, t] for n, t, _ in points)
    measured["classifier_epochs"] = float(np.mean(measured.pop("classifier_epochs_samples")))
    measured["classifier_call_s"] = round(float(np.median(measured.pop("classifier_call_s_samples"))), 1)
    begin = time.perf_counter()
    with clock.stage("cost: generate 1000 images (stylegan2 small, 32 px)", cached=False):
        ragan.generate(runs[("stylegan2", 32)].run_dir, 1000, settings.cache / "cost-generated", format="tfrecord",
                       seed=0, overwrite=True, **quiet(ragan.generate))  # fmt: skip
    measured["generate_per_kimg_s"] = round(time.perf_counter() - begin, 1)
    points = measured.pop("classifier_points")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    record = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "load": load,
        "cpus": os.cpu_count(),
        "costs": measured,
        "classifier_points": points,
    }
    write_json(settings.cache / "costs.json", record)
    return record


# ----------------------------------------------------------------------------------------------
# Report: table and figure
# ----------------------------------------------------------------------------------------------
def comparison_cell(comparisons: list, arm: str, baseline: str | None) -> str:
    if baseline is None:
        return ""
    entry = next((c for c in comparisons if c["arm"] == arm and c["baseline"] == baseline and "verdict" in c), None)
    if entry is None:
        return ""
    mark = {"no evidence either way": "n.s."}.get(entry["verdict"], entry["verdict"])
    warn = "†" if entry.get("underpowered") and entry["verdict"] == "no evidence either way" else ""
    return f"{entry['mean_difference']:+.3f} [{entry['ci_low']:+.3f}, {entry['ci_high']:+.3f}] {mark}{warn}"


def markdown_table(results: dict) -> str:
    lines = []
    for dataset, record in results["datasets"].items():
        pretraining = record["pretraining"]
        lines.append(
            f"## {dataset} ({record['image_size']} px): {record['num_train_all']} training images, val "
            f"{record['num_val']}, test {record['num_test']} ({record['test_images_also_in_train']} test images have a "
            f"pixel-identical twin in the training split). Pretraining without labels: {pretraining['status']}"
            + (f", {pretraining['kimg']:g} kimg" if pretraining.get("kimg") else "")
            + "."
        )
        lines.append("")
        for row in record["rows"]:
            reference = f"real@{pct(row['next_fraction'])}"
            lines.append(
                f"### {dataset}, {percent(row['fraction'])} labelled ({row['num_labelled']} images), "
                f"{record['image_size']} px, GANs {row['gan_kimg']:g} kimg"
            )
            lines.append("")
            lines.append(
                "| arm | train images | test AUC (mean ± std) | 95 % band | vs real | vs real + aug | "
                f"vs count-matched | vs {reference} |"
            )
            lines.append("|---|---|---|---|---|---|---|---|")
            for arm in row["arms"]:
                if arm["auc_mean"] is None:
                    continue
                comparisons = row["comparisons"]
                cells = [
                    arm["name"],
                    str(arm["num_train"]),
                    f"{arm['auc_mean']:.3f} ± {arm['auc_std']:.3f}"
                    + (" (learned nothing)" if arm.get("learned") is False else ""),
                    f"{arm['auc_ci_low']:.3f}-{arm['auc_ci_high']:.3f}",
                    comparison_cell(comparisons, arm["name"], "real"),
                    comparison_cell(comparisons, arm["name"], "real_aug"),
                    comparison_cell(comparisons, arm["name"], arm["control"]),
                    comparison_cell(comparisons, arm["name"], reference) if arm["name"] != reference else "",
                ]
                lines.append("| " + " | ".join(cells) + " |")
            for missing in row.get("missing_arms", []):
                lines.append(f"| {missing['name']} | not run: {missing['error']} | | | | | | |")
            lines.append("")
            gans = row["gans"]
            states = []
            for name, gan in gans.items():
                final = gan["final"]
                if gan["status"] != "finished":
                    states.append(f"{name}: {gan['status']} ({gan.get('error')})")
                    continue
                p, sign = final.get("augment_p"), final.get("real_sign")
                text = f"{name}: " + ", ".join(
                    part
                    for part in (
                        f"p {p:.3f}" if p is not None else None,
                        f"E[sign(D(real))] {sign:+.3f}" if sign is not None else None,
                        f"{gan['train_seconds'] / 60:.0f} min" if gan.get("train_seconds") else None,
                    )
                    if part
                )
                states.append(text)
            lines.append("GAN end states: " + "; ".join(states) + ".")
            choices = row["choices"]
            best = choices.get("best_generator", {})
            if best.get("chosen"):
                lines.append(
                    f"Best generator by validation AUC: {best['chosen']} "
                    f"({', '.join(f'{k} {v:.4f}' for k, v in best['val_auc'].items() if v is not None)})."
                )
            if "freeze_d" in choices:
                freeze = choices["freeze_d"]
                lines.append(
                    f"Freeze-D: kept freeze_d={freeze['chosen']} by validation AUC "
                    f"({', '.join(f'{k} {v:.4f}' for k, v in freeze['val_auc'].items() if v is not None)})."
                )
            for note in row["notes"]:
                lines.append(f"Note: {note}.")
            lines.append("")
    lines.append(
        "Cells: the arm's AUC minus the baseline's, paired by seed and averaged [95 % bootstrap interval over "
        "test images and seeds] and the verdict (helps / n.s. = no evidence either way / hurts; no verdict where "
        "the baseline learned nothing: its AUC interval includes 0.5 or its accuracy does not beat always answering "
        "the largest class); † = the test "
        "split cannot detect a difference of 0.02 AUC (results.json gives the detectable difference). The last "
        "column's baseline is real training with the labels of the next fraction: what labelling more images "
        "would have given instead. Count-matched: the real images repeated and augmented to the same count."
    )
    return "\n".join(lines) + "\n"


FIGURE_ARMS = [
    ("real", "real only", "black", "-"),
    ("real_aug", "real + standard augmentation", "grey", "-"),
    ("count_matched@1x", "count-matched control (1x)", "tab:brown", ":"),
    ("dcgan+syn@1x", "real + DCGAN (1x)", "tab:blue", "-"),
    ("sg2+syn@1x", "real + StyleGAN2 (1x)", "tab:orange", "-"),
    ("sg2_transfer+syn@1x", "real + StyleGAN2 pretrained unlabelled, fine-tuned (1x)", "tab:green", "-"),
    ("dcgan:synthetic_only", "DCGAN synthetic only", "tab:blue", "--"),
    ("sg2:synthetic_only", "StyleGAN2 synthetic only", "tab:orange", "--"),
    ("sg2_transfer:synthetic_only", "StyleGAN2 pretrained, fine-tuned: synthetic only", "tab:green", "--"),
]


def draw_figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(results["datasets"].items())
    figure, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 4.8), squeeze=False)
    for axis, (dataset, record) in zip(axes[0], datasets):
        by_arm: dict = {}
        for row in record["rows"]:
            # The transfer line shows the Freeze-D variant kept by validation.
            kept = row.get("transfer_generator", "sg2_transfer")
            for arm in row["arms"]:
                if arm["auc_mean"] is None:
                    continue
                name = arm["name"]
                if arm.get("generator") in ("sg2_transfer", "sg2_transfer_freezed"):
                    if arm["generator"] != kept:
                        continue
                    name = name.replace(kept, "sg2_transfer", 1)
                # The next fraction's real arm is the real line's point at that fraction.
                name = "real" if name.startswith("real@") else name
                x = arm["fraction"] if arm["fraction"] is not None else row["fraction"]
                by_arm.setdefault(name, {})[x] = (arm["auc_mean"], arm["auc_ci_low"], arm["auc_ci_high"])
        for index, (name, label, colour, style) in enumerate(FIGURE_ARMS):
            points = sorted(by_arm.get(name, {}).items())
            if not points:
                continue
            # Arms side by side around their fraction, so that the intervals do not hide each other.
            dodge = 10 ** (0.006 * (index - (len(FIGURE_ARMS) - 1) / 2))
            xs = [100 * x * dodge for x, _ in points]
            means, lows, highs = (np.array(v) for v in zip(*(value for _, value in points)))
            marker = "s" if style == "--" else "o"
            axis.errorbar(xs, means, yerr=[means - lows, highs - means], fmt=style, color=colour, marker=marker,
                          capsize=3, linewidth=1.3, label=label)  # fmt: skip
            if len(xs) > 1:
                axis.fill_between(xs, lows, highs, color=colour, alpha=0.12, linewidth=0)
        axis.set_xscale("log")
        ticks = sorted({100 * x for values in by_arm.values() for x in values})
        axis.set_xlim(ticks[0] / 1.25, ticks[-1] * 1.25)
        axis.set_xticks(ticks)
        axis.set_xticklabels([f"{t:g} %" for t in ticks])
        axis.minorticks_off()
        axis.set_xlabel("labelled fraction of the training split (log scale)")
        axis.set_ylabel(f"test AUC ({record['num_test']} held-out real images)")
        axis.set_title(f"{dataset}, {record['image_size']} px")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    figure.suptitle(
        "Does synthetic data help when labels are scarce?\nmean over seeds; bars and bands: 95 % intervals "
        "(bootstrap over test images and seeds)",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    os.replace(temporary, path)


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------
def parse_settings(argv=None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, required=True, help="cache folder (outside the repository)")
    parser.add_argument("--out", type=Path, default=None, help="results.json and table.md (default CACHE/report)")
    parser.add_argument("--figure", type=Path, default=None, help="the figure (default OUT/low-data.png)")
    parser.add_argument("--datasets", default="pneumoniamnist,mri", help="pneumoniamnist and/or mri, in this order")
    parser.add_argument("--fractions", default="0.05,0.1,0.25", help="PneumoniaMNIST's labelled fractions")
    parser.add_argument("--mri-fraction", type=float, default=0.10, help="the MRI row's labelled fraction")
    parser.add_argument("--mri-size", type=int, choices=(32, 64), default=None, help="MRI image size (default: auto)")
    parser.add_argument("--mri-hours", type=float, default=4.0, help="64 px MRI when its estimate fits in this")
    parser.add_argument("--kimg", type=float, default=None, help="every GAN run's budget in kimg (the same per row)")
    parser.add_argument("--pretrain-kimg", type=float, default=None, help="the unconditional pretraining's kimg")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="classifier seeds")
    parser.add_argument("--epochs", type=int, default=20, help="most classifier epochs (early stopping on val)")
    parser.add_argument("--freeze-d", type=int, default=4, help="Freeze-D layers measured on the first row")
    parser.add_argument(
        "--freeze-d-choice",
        type=int,
        default=None,
        help="Freeze-D chosen by an earlier run's first row: skip that comparison and the fixed-augment variant",
    )
    parser.add_argument("--fixed-augment-p", type=float, default=0.2, help="p of the fixed-augmentation variant")
    parser.add_argument("--estimate", action="store_true", help="print the plan's estimated cost and exit")
    parser.add_argument(
        "--measure-costs", action="store_true", help="time the pieces now (~30 min), write CACHE/costs.json and exit"
    )
    parser.add_argument("--quick", action="store_true", help="tiny: 5 %% only, 16 px, 2 seeds, a few GAN steps")
    parser.add_argument("--pneumonia-npz", type=Path, default=PNEUMONIA_NPZ, help=argparse.SUPPRESS)
    parser.add_argument("--mri-dir", type=Path, default=MRI_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def fail(message: str):
        parser.exit(2, f"low_data.py: {message}\n")

    if args.cache.resolve().is_relative_to(ROOT):
        fail(f"--cache {args.cache}: keep the cache outside the repository ({ROOT}).")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for dataset in datasets:
        if dataset not in ("pneumoniamnist", "mri"):
            fail(f"--datasets: {dataset!r} is not one of pneumoniamnist, mri.")
    try:
        fractions = [float(f) for f in args.fractions.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError as error:
        fail(f"--fractions/--seeds: {error}")
    if not all(0 < f < 1 for f in fractions) or not 0 < args.mri_fraction < 1:
        fail("--fractions and --mri-fraction must lie in (0, 1).")
    for flag, value in (("--freeze-d", args.freeze_d), ("--freeze-d-choice", args.freeze_d_choice)):
        if value is not None and value < 0:  # checked now, not when the transfer run starts an hour in
            fail(f"{flag} {value}: a number of discriminator layers, 0 or more.")
    out = args.out or args.cache / "report"
    settings = Settings(
        cache=args.cache,
        out=out,
        figure=args.figure or out / "low-data.png",
        datasets=datasets,
        fractions=sorted(fractions),
        mri_fraction=args.mri_fraction,
        mri_size=args.mri_size,
        mri_hours=args.mri_hours,
        mri_val_fraction=0.1,
        kimg=args.kimg if args.kimg is not None else DEFAULT_KIMG,
        pretrain_kimg=args.pretrain_kimg if args.pretrain_kimg is not None else DEFAULT_PRETRAIN_KIMG,
        seeds=seeds,
        epochs=args.epochs,
        patience=None,
        classifier="small_cnn",
        freeze_d=args.freeze_d,
        freeze_d_choice=args.freeze_d_choice,
        fixed_augment_p=args.fixed_augment_p,
        pneumonia_npz=args.pneumonia_npz,
        mri_dir=args.mri_dir,
    )
    if args.quick:
        # PneumoniaMNIST unless --datasets names others (--datasets mri --quick checks the MRI path).
        default_datasets = args.datasets == parser.get_default("datasets")
        settings.datasets = ["pneumoniamnist"] if default_datasets else datasets
        settings.fractions = [0.05]
        settings.seeds = seeds[:2] if args.seeds != parser.get_default("seeds") else [0, 1]
        settings.epochs = 2
        settings.image_size = 16
        settings.gan_steps = 2
        settings.freeze_d = 1
        settings.quick = True
    for dataset in settings.datasets:
        source = settings.pneumonia_npz if dataset == "pneumoniamnist" else settings.mri_dir
        if not source.exists():
            fail(f"{dataset}: {source} not found (the shared data folder).")
    return settings, args


def main(argv=None) -> int:
    settings, args = parse_settings(argv)
    if args.estimate:
        print_estimate(settings)
        return 0
    import ragan

    clock = Clock()
    if args.measure_costs:
        record = measure_costs(settings, clock)
        print(json.dumps(record, indent=1))
        print_estimate(settings)
        return 0
    clock.say(
        f"low-data benchmark: {', '.join(settings.datasets)}; GANs {settings.kimg:g} kimg per run"
        + ("" if settings.gan_steps is None else f" ({settings.gan_steps} steps: --quick)")
        + f", pretraining {settings.pretrain_kimg:g} kimg; seeds {settings.seeds}; cache {settings.cache}"
    )
    if not settings.quick:
        print_estimate(settings)
    experiment = Experiment(settings, clock)
    try:
        results = experiment.run()
    except KeyboardInterrupt as stop:  # also ragan's Interrupted (SIGTERM/SIGINT during a GAN run)
        clock.say(f"interrupted ({stop}); every finished stage is cached: run the same command to continue")
        return int(getattr(stop, "exit_status", 130))
    from ragan._tf import import_tf

    tf = import_tf()
    results.update(
        settings=settings.to_dict(),
        classifier=settings.classifier_spec(),
        stage_versions=STAGE_VERSIONS,
        timings=clock.timings,
        total_seconds=round(time.perf_counter() - clock.start, 1),
        machine={
            "python": platform.python_version(),
            "ragan": ragan.__version__,
            "tensorflow": tf.__version__,
            "cpus": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
        },
    )
    settings.out.mkdir(parents=True, exist_ok=True)
    from ragan._common import json_ready

    write_json(settings.out / "results.json", json_ready(results))
    table = markdown_table(results)
    (settings.out / ".table.md.tmp").write_text(table, encoding="utf-8")
    os.replace(settings.out / ".table.md.tmp", settings.out / "table.md")
    draw_figure(results, settings.figure)
    print(table)
    clock.say(f"wrote {settings.out / 'results.json'}, {settings.out / 'table.md'} and {settings.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
