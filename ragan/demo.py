"""The main job: the whole pipeline on the bundled PneumoniaMNIST sample, offline.

``ragan demo`` prepares the sample that ships with the package, trains the GAN named in
:data:`DEMO_GAN` (a small conditional DCGAN with DiffAugment), generates labelled synthetic images
and (when the evaluation stage is installed) writes the verdict report. Every step is resumable:
re-running the same command reuses what is already complete.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ragan.errors import RaganError

__all__ = ["DEMO_GAN", "QUICK_KIMG", "run_demo"]

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
    log=print,
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
        progress: show progress bars.
        log: where the step-by-step messages go.

    Returns:
        name -> path of every output.

    Example (the whole pipeline: minutes even with ``quick=True``, so not run as a doctest)::

        >>> paths = ragan.demo.run_demo("runs/demo", quick=True)  # doctest: +SKIP
    """
    from ragan.data.prepare import prepare_dataset
    from ragan.generation import generate
    from ragan.training.loop import train

    out = Path(out)
    _check_out(out)
    paths: dict[str, Path] = {}
    prepared = out / "prepared"
    if (prepared / "manifest.json").is_file():
        log(f"[1/4] prepared data already at {prepared} (delete it to prepare again)")
    else:
        log(f"[1/4] preparing the bundled PneumoniaMNIST sample -> {prepared}")
        prepare_dataset(
            "sample:pneumoniamnist", prepared, image_size=image_size, channels=1, seed=seed, progress=progress
        )
    paths["prepared"] = prepared

    run_dir = out / "run"
    resume = (run_dir / "config.json").is_file()
    if kimg is None:
        kimg = QUICK_KIMG if quick else DEMO_GAN["kimg"]
    log(
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
            progress=progress,
        )
    )
    paths["run"] = run_dir

    synthetic = out / "synthetic"
    labels = _labels_in_real_proportions(prepared, num_images)
    log(f"[3/4] generating {num_images} labelled images in the real classes' proportions -> {synthetic}")
    generate(
        run_dir, num_images, synthetic, format="tfrecord", labels=labels, seed=seed, overwrite=True, progress=progress
    )
    paths["synthetic"] = synthetic

    if evaluate and importlib.util.find_spec("ragan.evaluation.report") is not None:
        from ragan.evaluation.report import evaluate as evaluate_stage

        report = out / "report"
        log(f"[4/4] evaluating real vs synthetic -> {report}")
        result = evaluate_stage(
            prepared, synthetic, out=report, generator_run=run_dir, quick=quick, overwrite=True, progress=progress
        )
        paths["report"] = report / "report.html"
        # The report's first screen, in the terminal: the verdict (a smoke test with --quick) and the privacy audit.
        log("")
        log(result.data["verdict"]["headline"])
        for sentence in (result.data.get("privacy") or {}).get("sentences", []):
            log(sentence)
    else:
        log("[4/4] evaluation skipped")

    samples = sorted((run_dir / "samples").glob("*.png"))
    log("")
    log("done. Outputs:")
    log(f"  prepared data      {prepared}")
    if samples:
        log(f"  sample grids       {run_dir / 'samples'} (latest: {samples[-1].name})")
    log(f"  model              {run_dir / 'model.keras'}")
    log(f"  MLflow             mlflow ui --backend-store-uri sqlite:///{(run_dir / 'mlflow.db').resolve()}")
    log(f"  synthetic images   {synthetic}")
    if "report" in paths:
        log(f"  report             {paths['report']}")
    return paths


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
