"""The main job: the whole pipeline on the bundled PneumoniaMNIST sample, offline.

``ragan demo`` prepares the sample that ships with the package, trains the GAN named in
:data:`DEMO_GAN` (a small conditional DCGAN with DiffAugment), generates labelled synthetic images
and (when the evaluation stage is installed) writes the verdict report. Every step is resumable:
re-running the same command reuses what is already complete.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from ragan._logging import stage_output
from ragan.errors import RaganError
from ragan.training.run_files import CONFIG_FILE, MODEL_FILE, SAMPLES_DIR

logger = logging.getLogger(__name__)

__all__ = ["DEMO_GAN", "QUICK_KIMG", "first_screen", "output_lines", "run_demo"]

#: The demo's GAN, in one place: the registered model, its hyperparameters and its training length
#: (thousands of real images shown). Another registered GAN (e.g. a StyleGAN2-ADA preset) is swapped
#: in here. DiffAugment because the sample has only 400 training images; the generator's
#: class-conditional BatchNorm keeps it drawing varied images per class (ragan.layers.blocks).
DEMO_GAN = {
    "model": "dcgan",
    "config": {"conditional": True, "base_filters": 32, "latent_dim": 64, "augment": "diffaugment"},
    "kimg": 100.0,
    "batch_size": 64,
}
#: Training length of ``--quick`` (a smoke test of the whole pipeline, not a usable generator).
QUICK_KIMG = 4.0


def run_demo(
    out: str | Path = "runs/demo",
    *,
    image_size: int = 32,
    kimg: float | None = None,
    num_images: int = 400,
    evaluate: bool = True,
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Run prepare -> train -> generate (-> evaluate) on the bundled sample.

    Args:
        out: the folder that receives ``prepared/``, ``run/``, ``synthetic/`` and ``report/``.
        image_size: training resolution (a power of two, 16..256).
        kimg: training length in thousands of real images shown (default: ``DEMO_GAN["kimg"]``, or
            ``QUICK_KIMG`` with ``quick``).
        num_images: synthetic images to generate.
        evaluate: also run the evaluation stage when it is available.
        quick: a smoke run: ``QUICK_KIMG`` of training (unless ``kimg`` is given) and a short
            evaluation (one seed, a few epochs; see ``ragan evaluate --quick``).
        seed: the seed of every stage.
        progress: ``False``: warnings only; otherwise each step and its progress are shown through
            the ``ragan`` logger (see :mod:`ragan._logging`).

    Returns:
        name -> path of every output.

    Example (the whole pipeline: minutes even with ``quick=True``, so not run as a doctest)::

        >>> paths = ragan.demo.run_demo("runs/demo", quick=True)  # doctest: +SKIP
    """
    out = Path(out)
    _check_out(out)
    with stage_output(progress):
        return _run_demo(out, image_size, kimg, num_images, evaluate, quick, seed)


def _run_demo(out: Path, image_size: int, kimg, num_images: int, evaluate: bool, quick: bool, seed: int) -> dict:
    from ragan.data.prepare import prepare_dataset
    from ragan.generation import generate
    from ragan.training.loop import train

    paths: dict[str, Path] = {}
    prepared = out / "prepared"
    if (prepared / "manifest.json").is_file():
        logger.info(f"[1/4] prepared data already at {prepared} (delete it to prepare again)")
    else:
        logger.info(f"[1/4] preparing the bundled PneumoniaMNIST sample -> {prepared}")
        prepare_dataset("sample:pneumoniamnist", prepared, image_size=image_size, channels=1, seed=seed)
    paths["prepared"] = prepared

    run_dir = out / "run"
    resume = (run_dir / CONFIG_FILE).is_file()
    if kimg is None:
        kimg = QUICK_KIMG if quick else DEMO_GAN["kimg"]
    logger.info(
        f"[2/4] training a conditional {DEMO_GAN['model']} for {kimg:g} kimg -> {run_dir}"
        + (" (resuming)" if resume else "")
    )
    run_dir = Path(
        train(
            DEMO_GAN["model"],
            data=prepared,
            out=run_dir,
            config=dict(DEMO_GAN["config"]),
            train_config={"kimg": kimg, "batch_size": DEMO_GAN["batch_size"], "seed": seed},
            resume=resume,
        )
    )
    paths["run"] = run_dir

    synthetic = out / "synthetic"
    labels = _labels_in_real_proportions(prepared, num_images)
    logger.info(f"[3/4] generating {num_images} labelled images in the real classes' proportions -> {synthetic}")
    generate(run_dir, num_images, synthetic, format="tfrecord", labels=labels, seed=seed, overwrite=True)
    paths["synthetic"] = synthetic

    if evaluate and importlib.util.find_spec("ragan.evaluation.report") is not None:
        from ragan.evaluation.report import evaluate as evaluate_stage

        report = out / "report"
        logger.info(f"[4/4] evaluating real vs synthetic -> {report}")
        result = evaluate_stage(prepared, synthetic, out=report, generator_run=run_dir, quick=quick, overwrite=True)
        paths["report"] = report / "report.html"
        logger.info("\n".join(["the report's first screen:", *first_screen(result.data)]))
    else:
        logger.info("[4/4] evaluation skipped")

    logger.info("done. Outputs:\n" + "\n".join(output_lines(paths)))
    return paths


def first_screen(report: dict) -> list[str]:
    """The report's first screen, for the terminal: the verdict (a smoke test with ``quick``) and the
    privacy audit's sentences."""
    return [report["verdict"]["headline"], *(report.get("privacy") or {}).get("sentences", [])]


def output_lines(paths: dict[str, Path]) -> list[str]:
    """Where :func:`run_demo`'s outputs are, one line each (what ``ragan demo`` ends with)."""
    run_dir = paths["run"]
    samples = sorted((run_dir / SAMPLES_DIR).glob("*.png"))
    lines = [f"  prepared data      {paths['prepared']}"]
    if samples:
        lines.append(f"  sample grids       {run_dir / SAMPLES_DIR} (latest: {samples[-1].name})")
    lines.append(f"  model              {run_dir / MODEL_FILE}")
    lines.append(f"  MLflow             mlflow ui --backend-store-uri sqlite:///{(run_dir / 'mlflow.db').resolve()}")
    lines.append(f"  synthetic images   {paths['synthetic']}")
    if "report" in paths:
        lines.append(f"  report             {paths['report']}")
    return lines


def _labels_in_real_proportions(prepared: Path, n: int) -> list[int]:
    """Class indices for ``n`` images in the training split's class proportions (largest remainder).

    The evaluation mixes synthetic images into the real training set in the real proportions;
    with balanced synthetic classes the minority class runs out and arms are left out.
    """
    import numpy as np

    from ragan.data.manifest import read_manifest

    manifest = read_manifest(prepared)
    counts = np.array([manifest.split("train").class_counts.get(name, 0) for name in manifest.class_names], float)
    shares = n * counts / counts.sum()
    per_class = np.floor(shares).astype(int)
    for index in np.argsort(per_class - shares)[: n - per_class.sum()]:
        per_class[index] += 1
    return [index for index, count in enumerate(per_class) for _ in range(count)]


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RaganError(f"--out {str(out)!r} exists and is not a directory.")
