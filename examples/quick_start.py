"""Quick start: the whole ragan pipeline in a few lines of Python.

Prepares the PneumoniaMNIST sample bundled with ragan (offline), trains a conditional DCGAN,
generates labelled synthetic X-rays and evaluates them against the real images.

Run:
    python examples/quick_start.py --out runs/quick_start     # 64 px, 50 kimg, the full report
    python examples/quick_start.py --quick                    # 16 px, 4 steps: a smoke run
"""

import argparse
import tempfile
from pathlib import Path

import ragan

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="ragan-quick-start-"))

# 16 px is the smallest size the built-in networks support; 64 px looks like an X-ray.
image_size = 16 if args.quick else 64

# 1. Prepare: validated, resized, split 80/10/10 by class, written as TFRecords + manifest.json.
ragan.prepare_dataset("sample:pneumoniamnist", out / "prepared", image_size=image_size, overwrite=True)

# 2. Train: hyperparameters are a dict of overrides (see `ragan hparams dcgan`); training options
#    count real images shown (kimg) or steps. The run folder gets checkpoints, sample grids,
#    model.keras and an MLflow run.
run = ragan.train(
    "dcgan",
    data=out / "prepared",
    out=out / "run",
    config={"conditional": True, "latent_dim": 32 if args.quick else 128, "base_filters": 8 if args.quick else 64},
    train_config={"steps": 4, "batch_size": 16, "log_every": 2} if args.quick else {"kimg": 50},
    resume=True,  # re-running the example continues (or reuses) the run
)

# 3. Generate: balanced over the classes; TFRecords so that evaluation reads them like real data.
ragan.generate(run, n=64 if args.quick else 1000, out=out / "synthetic", format="tfrecord", seed=1, overwrite=True)

# The trained model is also a plain Python object: 4 images of class 1 (pneumonia), in [-1, 1].
gan = ragan.load_generator(run)
print("class names:", gan.class_names, "- generated array shape:", gan.generate(4, labels=1, seed=0).shape)

# 4. Evaluate: FID/KID/precision-recall, diversity, memorisation check and the classifier study
#    (real vs real+synthetic vs a count-matched control, tested on held-out real images).
#    --quick skips the study, the slow part (examples/augmentation_study.py is about it).
quick = {"study": False, "epochs": 1, "max_images": 64, "kid_subsets": 5, "diversity_pairs": 20}
report = ragan.evaluate(
    out / "prepared",
    out / "synthetic",
    out=out / "report",
    generator_run=run,
    overwrite=True,
    **(quick if args.quick else {}),
)
print("\n".join(report.summary))
print(f"\nOutputs in {out}:")
print(f"  sample grids  {Path(run) / 'samples'}")
print(f"  model         {Path(run) / 'model.keras'}")
print(f"  synthetic     {out / 'synthetic'}")
print(f"  report        {report.html_path}")
