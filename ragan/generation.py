"""Generation: the trained generator writes synthetic images that later stages read like real ones.

``ragan generate RUN_OR_MODEL --n N --out DIR`` writes either a folder of PNG files (class
sub-folders when the model is conditional) or a prepared-format TFRecord directory whose
manifest is marked ``synthetic`` and records the model, seed and truncation, so
``ragan evaluate`` reads real and synthetic data the same way.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragan._common import first_line, read_json
from ragan._files import build_then_publish, path_inside
from ragan._logging import progress_bar, stage_output
from ragan._untrusted import check_run_metadata
from ragan.config import StageConfig, hparam, takes_options
from ragan.errors import RaganError, did_you_mean
from ragan.training.run_files import MODEL_FILE, RUN_FILE

__all__ = ["GenerateConfig", "GenerationResult", "generate", "load_generator", "resolve_model_path"]

FORMATS = ("png", "tfrecord")


# ------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------
def resolve_model_path(run_or_model: str | os.PathLike, *, tracking_uri: str | None = None) -> tuple[Path, dict]:
    """The ``.keras`` file of a run directory, a model file or an MLflow ``runs:/`` URI.

    Returns the path and the run's metadata (``run.json``; empty when there is none). An MLflow
    URI is resolved against ``tracking_uri``, else ``MLFLOW_TRACKING_URI``.
    """
    text = str(run_or_model)
    if text.startswith(("runs:/", "models:/", "mlflow-artifacts:/")):
        try:
            import mlflow

            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text, tracking_uri=tracking_uri))
        except Exception as error:  # noqa: BLE001 - any MLflow failure is the user's URI/server
            raise RaganError(f"cannot download the model {text!r} from MLflow: {error}") from None
        return resolve_model_path(local)
    path = Path(text)
    if not path.exists():
        raise RaganError(f"model {text!r} does not exist; pass a training run directory or a .keras file.")
    if path.is_dir():
        meta: dict = {}
        run_file = path / RUN_FILE
        if run_file.is_file():
            meta = check_run_metadata(read_json(run_file), run_file)  # a run folder may come from anyone
            candidate = path_inside(path, meta.get("model", MODEL_FILE), action="read")
        else:
            candidates = sorted(path.glob("*.keras")) + sorted(path.glob("model/*.keras"))
            if not candidates:
                raise RaganError(
                    f"{text!r} holds no trained model (no {RUN_FILE} and no .keras file); "
                    "has the training run finished?"
                )
            candidate = candidates[0]
        if not candidate.is_file():
            raise RaganError(f"{text!r}: the run's model file {candidate.name!r} is missing; has it finished?")
        return candidate, meta
    if path.suffix != ".keras":
        raise RaganError(f"model file {text!r} must be a .keras file saved by ragan.")
    meta_file = path.parent / RUN_FILE
    meta = {}
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            meta = {}
        meta = check_run_metadata(meta, meta_file) if isinstance(meta, dict) else {}
    return path, meta


def load_generator(run_or_model, *, tracking_uri: str | None = None):
    """Load a trained ragan GAN (generator, EMA generator and discriminator).

    Args:
        run_or_model: a training run directory (its ``run.json`` names the model), a ``.keras``
            file saved by ragan, an MLflow ``runs:/<run_id>/model`` URI, another program's weight
            file that a model registered a loader for (an official StyleGAN2-ADA ``.pkl``, read
            without running its code; :func:`ragan.registry.register_weight_loader`), or an
            already loaded GAN.
        tracking_uri: the MLflow server or store of a ``runs:/`` URI (default:
            ``MLFLOW_TRACKING_URI``; a run's local store is ``sqlite:///RUN_DIR/mlflow.db``).

    Returns:
        The :class:`ragan.models.GAN`; ``model.class_names`` holds the class names when known.

    Example (needs a run folder written by :func:`ragan.train`, as in the package example)::

        >>> gan = ragan.load_generator("runs/dcgan")  # doctest: +SKIP
        >>> gan.generate(16, seed=0).shape  # doctest: +SKIP
        (16, 32, 32, 1)
    """
    from ragan._tf import import_keras

    keras = import_keras()
    import ragan.models  # noqa: F401 - registers the built-in GANs for deserialisation

    if isinstance(run_or_model, keras.Model):
        return run_or_model
    from ragan.registry import weight_loader_for

    loader = weight_loader_for(run_or_model)
    if loader is not None:
        model, info = loader.load(run_or_model)
        model.class_names = [f"class_{i}" for i in range(model.num_classes)]
        model.run_metadata = {"imported_from": info}
        return model
    path, meta = resolve_model_path(run_or_model, tracking_uri=tracking_uri)
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - corrupt/foreign files surface as one line
        raise RaganError(f"{path}: cannot load the model: {first_line(error)}") from None
    names = meta.get("class_names")
    if not names and getattr(model, "num_classes", 0):
        names = [f"class_{i}" for i in range(model.num_classes)]
    model.class_names = list(names or [])
    model.run_metadata = meta
    return model


# ------------------------------------------------------------------------------------------
# Generation
# ------------------------------------------------------------------------------------------
@dataclass
class GenerationResult:
    """What :func:`generate` wrote."""

    out: Path
    format: str
    num_images: int
    num_generated: int
    labels: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    seed: int = 0
    truncation: float | None = None
    filter_threshold: float | None = None

    @property
    def kept_fraction(self) -> float:
        return self.num_images / self.num_generated if self.num_generated else 0.0


def _resolve_labels(labels, n: int, model) -> np.ndarray | None:
    """Per-image class indices from class names or indices (``None``: classes in turn).

    A short list means "these classes, in turn" (``--labels pneumonia`` or ``--labels 0,1``);
    the model's own :meth:`GAN.resolve_labels` checks ranges and unconditional models.
    """
    if labels is None or (isinstance(labels, str) and labels == "balanced"):
        return model.resolve_labels(None, n)
    if not model.conditional:
        return model.resolve_labels(labels, n)  # raises: this model takes no labels
    names = list(getattr(model, "class_names", []) or [])
    values = [labels] if isinstance(labels, (str, int, np.integer)) else list(labels)

    def to_index(value) -> int:
        if isinstance(value, (int, np.integer)):
            return int(value)
        text = str(value).strip()
        if text in names:
            return names.index(text)
        if text.lstrip("-").isdigit():
            return int(text)
        raise RaganError(
            f"label {value!r} is not a class of this model; classes: {', '.join(names)}.{did_you_mean(text, names)}"
        )

    indices = [to_index(v) for v in values]
    if len(indices) != n:
        indices = [indices[i % len(indices)] for i in range(n)]
    return model.resolve_labels(np.asarray(indices, dtype=np.int64), n)


def _to_pixels(images: np.ndarray, dtype: str) -> np.ndarray:
    """[-1, 1] floats to the integer pixels of the training data (``uint8`` or ``uint16``)."""
    top = 65535 if dtype == "uint16" else 255
    return np.clip(np.rint((images + 1.0) * (top / 2.0)), 0, top).astype(dtype)


def _pixel_dtype(model, bit_depth: int | None = None) -> str:
    """The pixel type to write: ``bit_depth`` when given, else the training data's, from the run's
    ``run.json``: a GAN trained on 16-bit images writes 16-bit images (no silent truncation to 8 bits);
    without run metadata (an imported network, a bare ``.keras`` file), ``uint8``."""
    if bit_depth is not None:
        return "uint16" if bit_depth == 16 else "uint8"
    meta = getattr(model, "run_metadata", None) or {}
    dtype = meta.get("dtype", "uint8") if isinstance(meta, dict) else "uint8"
    return dtype if dtype in ("uint8", "uint16") else "uint8"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def _partial_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.ragan-partial"


def _labels(name: str, labels):
    """Class names or indices: ``None``/``"balanced"`` (classes in turn), one class, or a sequence."""
    if isinstance(labels, str):
        if labels.strip() == "balanced":
            return None
        parts = tuple(part.strip() for part in labels.split(",") if part.strip())
        if not parts:
            raise RaganError(f"{name}={labels!r} is empty; give class names or indices, e.g. 'pneumonia' or 0,1.")
        return parts
    if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
        return (int(labels),)
    try:
        values = tuple(labels)
    except TypeError:
        values = None
    if not values or not all(isinstance(v, (str, int, np.integer)) and not isinstance(v, bool) for v in values):
        raise RaganError(f"{name}={labels!r} is not allowed; give class names or indices (one, or one per image).")
    return tuple(int(v) if isinstance(v, (int, np.integer)) else str(v) for v in values)


@dataclass
class GenerateConfig(StageConfig):
    """The options of :func:`ragan.generate` and ``ragan generate`` (see :class:`~ragan.config.StageConfig`).

    Example:
        >>> GenerateConfig(labels="normal,pneumonia", truncation=0.7).labels
        ('normal', 'pneumonia')
    """

    format: str = hparam(
        "png",
        help="png (a folder, class sub-folders when conditional) or tfrecord (the prepared format with a "
        "manifest marked synthetic, which 'ragan evaluate' reads).",
        choices=FORMATS,
    )
    labels: Any = hparam(
        None,
        help="Conditional models: class names or indices, comma-separated, cycled over the images (one per image "
        "from Python); default all classes in turn.",
        check=_labels,
        metavar="CLASS,...",
    )
    seed: int = hparam(0, help="Random seed; the same seed gives the same images.")
    bit_depth: int | None = hparam(
        None,
        help="Bits per sample of the written images: 8 or 16 (16-bit PNG for greyscale; TFRecords either way); "
        "default: the training data's, from the run (8 for an imported network).",
        choices=(None, 8, 16),
    )
    truncation: float | None = hparam(
        None,
        help="Truncation psi: StyleGAN2 pulls w toward its average (e.g. 0.7), the other GANs redraw latent values "
        "beyond +-psi; default off.",
        min=0.0,
    )
    noise_mode: str | None = hparam(
        None,
        help="StyleGAN2 only: its stored noise maps (const, the default), fresh noise (random) or none.",
        choices=(None, "const", "random", "none"),
    )
    filter_threshold: float | None = hparam(
        None,
        help="Keep only images the discriminator scores as real with at least this probability (e.g. 0.7), "
        "generating until n are kept or max_attempts*max(n, 256) were tried; not for critic models (wgan_gp, sngan).",
        min=0.0,
        max=1.0,
    )
    max_attempts: int = hparam(
        20, help="With filter_threshold: how many times max(n, 256) images may be generated at most.", min=1
    )
    batch_size: int = hparam(
        256,
        help="Images per generator call: speed and memory only, the images do not depend on it.",
        min=1,
    )
    use_ema: bool = hparam(
        True,
        help="Generate with the EMA generator when the model has one (on by default; --no-ema: the raw one).",
        flag="--no-ema",
    )
    tracking_uri: str | None = hparam(
        None,
        help="MLflow server or store of a runs:/ID/model URI (default MLFLOW_TRACKING_URI; a run's own store is "
        "sqlite:///RUN_DIR/mlflow.db).",
        metavar="URI",
    )
    overwrite: bool = hparam(False, help="Replace a non-empty output directory.")


@takes_options(GenerateConfig)
def generate(run_or_model, n: int, out: str | os.PathLike, *, config=None, progress: bool = True, **options):
    """Generate ``n`` images with a trained GAN and write them to ``out``.

    Args:
        run_or_model: a run directory, ``.keras`` file, MLflow URI or loaded GAN.
        n: number of images to write.
        out: output directory; it appears atomically (written aside, then renamed).
        config: the options as a :class:`GenerateConfig`, a dict or a YAML/JSON file; keyword
            options win over it.
        progress: ``False``: no progress bar (warnings only; see :mod:`ragan._logging`).

    Returns:
        A :class:`GenerationResult` (counts, labels, kept fraction).

    Example (needs a run folder written by :func:`ragan.train`; the package example runs one)::

        >>> ragan.generate("runs/dcgan", n=500, out="synthetic", format="tfrecord", seed=1)  # doctest: +SKIP
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise RaganError(f"n={n!r} must be a positive number of images.")
    config = GenerateConfig.resolve(config, options)
    format, seed, truncation, filter_threshold = config.format, config.seed, config.truncation, config.filter_threshold
    use_ema, noise_mode, overwrite = config.use_ema, config.noise_mode, config.overwrite
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise RaganError(
            f"output {str(out)!r} exists and is not empty; pass overwrite=True (--overwrite) to replace it."
        )

    model = load_generator(run_or_model, tracking_uri=config.tracking_uri)
    if filter_threshold is not None and not getattr(model, "discriminator_gives_probability", True):
        raise RaganError(
            f"filter_threshold: {type(model).__name__}'s discriminator scores are not probabilities "
            "(a critic or hinge margin), so a probability threshold means nothing for it; generate "
            "without the filter."
        )
    options = {}
    if noise_mode is not None:
        import inspect

        if "noise_mode" not in inspect.signature(model.generate).parameters:
            raise RaganError(
                f"noise_mode applies to StyleGAN2 models; this is a {getattr(model, 'gan_name', type(model).__name__)}."
            )
        options["noise_mode"] = noise_mode
    wanted = _resolve_labels(config.labels, int(n), model)
    class_names = list(getattr(model, "class_names", []) or [])
    dtype = _pixel_dtype(model, config.bit_depth)
    if format == "png" and dtype == "uint16" and getattr(model, "channels", 1) == 3:
        why = "bit_depth=16 asks for" if config.bit_depth == 16 else "this model was trained on"
        raise RaganError(
            f"format='png': {why} 16-bit RGB images, which PNG files from ragan cannot hold (16-bit PNG is "
            "greyscale here); use format='tfrecord' (--format tfrecord) or bit_depth=8."
        )

    partial = _partial_dir(out)
    meta = model.run_metadata if hasattr(model, "run_metadata") else {}
    generator_info = {
        "model": getattr(model, "gan_name", type(model).__name__),
        "run": str(run_or_model) if not hasattr(run_or_model, "generate") else None,
        "mlflow_run_id": (meta.get("mlflow") or {}).get("run_id")
        if isinstance(meta.get("mlflow"), dict)
        else meta.get("mlflow_run_id"),
        "seed": int(seed),
        "truncation": truncation,
        **options,
        "use_ema": bool(use_ema),
        "filter_threshold": filter_threshold,
    }
    # One generate at a time into `out`: a second one stops instead of deleting this one's images.
    with build_then_publish(partial, out, "generate"):
        # Images go to disk round by round, so memory does not grow with n.
        sink = _ImageSink(partial, format, int(n), class_names)
        try:
            with stage_output(progress):
                kept_labels, generated = _generate_filtered(
                    model,
                    int(n),
                    wanted,
                    seed=int(seed),
                    truncation=truncation,
                    batch_size=config.batch_size,
                    threshold=filter_threshold,
                    max_attempts=config.max_attempts,
                    use_ema=use_ema,
                    dtype=dtype,
                    sink=sink,
                    options=options,
                )
            if filter_threshold is not None and sink.count < n:
                raise RaganError(
                    f"only {sink.count} of {generated} generated images scored >= {filter_threshold} as real; "
                    f"lower the filter threshold or raise max_attempts (--max-attempts, now {config.max_attempts})."
                )
            generator_info.update(num_generated=int(generated), num_kept=int(sink.count))
            shape = (model.image_size, model.image_size, model.channels)
            sink.finish(generator_info, dtype=dtype, image_shape=shape)
        except BaseException:
            sink.abort()
            raise
    return GenerationResult(
        out=out,
        format=format,
        num_images=int(sink.count),
        num_generated=int(generated),
        labels=[] if kept_labels is None else [int(v) for v in kept_labels],
        class_names=class_names,
        seed=int(seed),
        truncation=truncation,
        filter_threshold=filter_threshold,
    )


# Images drawn from one derived seed. Fixed, so --batch-size (a speed/memory setting) never
# changes which images a seed gives.
SEED_ROUND = 256
# Above 256 px a round is smaller, so that memory stays bounded (16 RGB images of 1024 px are
# 200 MB as float32); it depends on the model's image size only, so a seed still decides the images.
LARGE_SEED_ROUND = 16


def _seed_round(model) -> int:
    return SEED_ROUND if getattr(model, "image_size", 0) <= 256 else LARGE_SEED_ROUND


def _generate_filtered(
    model,
    n,
    wanted,
    *,
    seed,
    truncation,
    batch_size,
    threshold,
    max_attempts,
    use_ema,
    dtype,
    sink,
    options=None,
):
    """Generate rounds of :data:`SEED_ROUND` images (deterministically from ``seed``) until ``n``
    images pass the filter, or ``max_attempts`` times ``max(n, SEED_ROUND)`` were tried; each
    round's kept images go to ``sink``. Returns the kept labels (or ``None``) and the number tried."""
    kept_labels: list[np.ndarray] = []
    round_size = _seed_round(model)
    count = 0
    generated = 0
    round_index = 0
    limit = max(n, round_size) * max(1, max_attempts) if threshold is not None else n
    bar = progress_bar(total=n, desc="generate", unit="img")
    try:
        while count < n and generated < limit:
            size = min(round_size, n - count) if threshold is None else round_size
            if wanted is None:
                batch_labels = None
            elif threshold is None:
                batch_labels = wanted[count : count + size]
            else:
                # Still-missing labels in turn, so the kept set keeps the asked class balance.
                missing = wanted[count:]
                batch_labels = np.resize(missing, size)
            # One seed per round derived from the user's seed: the same seed always gives the same images.
            batch = model.generate(
                size,
                labels=batch_labels,
                seed=seed * 1_000_003 + round_index,
                batch_size=batch_size,
                truncation=truncation,
                use_ema=use_ema,
                **(options or {}),
            )
            batch = np.asarray(batch, dtype=np.float32)
            generated += size
            round_index += 1
            if threshold is not None:
                scores = _sigmoid(np.asarray(model.discriminate(batch, batch_labels), dtype=np.float64).reshape(-1))
                keep = scores >= threshold
                if batch_labels is not None:
                    # Keep no more of a class than is still wanted.
                    keep_idx = []
                    needed = {int(c): int(np.sum(wanted[count:] == c)) for c in np.unique(wanted[count:])}
                    for i in np.flatnonzero(keep):
                        c = int(batch_labels[i])
                        if needed.get(c, 0) > 0:
                            needed[c] -= 1
                            keep_idx.append(i)
                    keep_idx = np.asarray(keep_idx, dtype=np.int64)
                else:
                    keep_idx = np.flatnonzero(keep)[: n - count]
                batch = batch[keep_idx]
                batch_labels = None if batch_labels is None else np.asarray(batch_labels)[keep_idx]
            batch_labels = None if batch_labels is None else np.asarray(batch_labels, dtype=np.int32)
            sink.write(_to_pixels(batch, dtype), batch_labels)
            if batch_labels is not None:
                kept_labels.append(batch_labels)
            count += len(batch)
            bar.update(len(batch))
    finally:
        bar.close()
    labels = np.concatenate(kept_labels) if kept_labels else (None if wanted is None else np.zeros(0, np.int32))
    return labels, generated


class _ImageSink:
    """Writes generated images as they are kept: PNG files (class sub-folders when labelled) or
    one TFRecord shard with a manifest marked synthetic."""

    def __init__(self, directory: Path, format: str, n: int, class_names: Sequence[str]):
        self.directory, self.format = directory, format
        self.class_names = list(class_names)
        self.width = max(6, int(math.log10(max(n, 1))) + 1)
        self.count = 0
        self.class_counts: dict[int, int] = {}
        self.writer = None
        if format == "tfrecord":
            from ragan.data.manifest import shard_name
            from ragan.data.tfrecord import ShardWriter

            self.writer = ShardWriter(directory / shard_name("train", 0, 1))

    def _class_name(self, label: int) -> str:
        return self.class_names[label] if label < len(self.class_names) else f"class_{label}"

    def write(self, images: np.ndarray, labels) -> None:
        from PIL import Image

        for offset, image in enumerate(images):
            label = None if labels is None else int(labels[offset])
            if label is not None:
                self.class_counts[label] = self.class_counts.get(label, 0) + 1
            if self.writer is not None:
                self.writer.write(image, -1 if label is None else label, -1)
            else:
                parts = () if label is None else (self._class_name(label),)
                # A class name is a label; path_inside refuses one that would leave the output folder.
                target = path_inside(self.directory, *parts, f"synthetic-{self.count:0{self.width}d}.png")
                target.parent.mkdir(exist_ok=True)
                array = image[..., 0] if image.shape[-1] == 1 else image
                Image.fromarray(array).save(target, optimize=False)
            self.count += 1

    def finish(self, generator_info: dict, *, dtype: str, image_shape: tuple[int, int, int]) -> None:
        if self.writer is None:
            (self.directory / "generation.json").write_text(
                json.dumps(generator_info, indent=2) + "\n", encoding="utf-8"
            )
            return
        from ragan.data.manifest import Manifest, SplitInfo

        self.writer.close()
        labelled = bool(self.class_counts)
        names = list(self.class_names) if labelled else []
        if labelled and len(names) < max(self.class_counts) + 1:
            names = [f"class_{i}" for i in range(max(self.class_counts) + 1)]
        counts = {name: self.class_counts.get(i, 0) for i, name in enumerate(names)} if labelled else {}
        size, _, channels = image_shape
        manifest = Manifest(
            image_size=size,
            channels=channels,
            dtype=dtype,
            class_names=names,
            labelled=labelled,
            splits={"train": SplitInfo(num_examples=self.count, class_counts=counts, shards=[self.writer.info()])},
            options={"image_size": size, "channels": channels, "bit_depth": 16 if dtype == "uint16" else 8},
            source={"kind": "generated"},
            synthetic=True,
            generator=generator_info,
        )
        manifest.write(self.directory)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
