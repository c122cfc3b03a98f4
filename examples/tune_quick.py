"""Hyperparameter search: KerasTuner over a GAN's declared hyperparameters, every trial an MLflow run.

Prepares the PneumoniaMNIST sample bundled with ragan (offline), searches DCGAN hyperparameters
with Hyperband (budget in kimg), scores every trial by KID between its generator's images and
the held-out real images, and uses the best generator. Re-running the same command resumes the
study where it stopped (even after kill -9); finished trials are not trained again.

Run:
    python examples/tune_quick.py --out runs/tune      # 32 px, Hyperband up to 20 kimg per trial
    python examples/tune_quick.py --quick              # 16 px, 2 random trials of 5 steps: a smoke run

The same study from the command line:
    ragan tune dcgan --data runs/tune/prepared --out runs/tune/study --tuner hyperband \\
        --max-kimg 20 --set conditional=true --range g_learning_rate=5e-5,5e-4 --choices latent_dim=64,128
"""

import argparse
import tempfile
from pathlib import Path

import ragan

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="ragan-tune-"))

# 1. Prepare: train / val / test splits. Trials train on 'train'; the objective compares their
#    images with 'val' (held-out real images the GANs never saw).
ragan.prepare_dataset(
    "sample:pneumoniamnist", out / "prepared", image_size=16 if args.quick else 32, overwrite=True, progress=False
)

# 2. The search space is DCGAN's declared one (see `ragan tune dcgan --help`), changed here:
#    a single value fixes a hyperparameter, [low, high] narrows a declared range, a list narrows
#    a declared choice, {"min", "max"} or {"choices"} adds a range to any hyperparameter.
#    Training options (batch_size, log_every, ...) can be fixed or searched the same way.
search = {
    "conditional": True,  # fixed: a class-conditional GAN
    "g_learning_rate": [5e-5, 5e-4],  # narrowed (keeps the declared log sampling)
    "d_learning_rate": [5e-5, 5e-4],
    "latent_dim": [64, 128],  # a declared choice, narrowed
    "ema_decay": {"choices": [0.99, 0.999]},  # not searched by default: added
}
if args.quick:
    search.update(
        {"latent_dim": 16, "base_filters": 8, "batch_size": 16, "log_every": 5, "beta_1": 0.5, "ema_decay": 0.99}
    )
    study = dict(tuner="random", max_trials=2, kimg_per_trial=0.08, classifier_epochs=1, objective_images=60)
else:
    # Hyperband: many short trials, the best continued (from their checkpoints, with both
    # optimizers' state) up to max_kimg. One Hyperband iteration with factor 3 is 23 trials.
    study = dict(tuner="hyperband", max_kimg=20, factor=3, classifier_epochs=10)

# 3. Search. The objective (KID by default; "fid" or your own f(real, fake) -> float) is computed
#    in the feature space of a small classifier trained once on the real 'train' split. A trial
#    that diverges (NaN losses) is recorded as failed and the search goes on.
result = ragan.tune("dcgan", out / "prepared", out / "study", search=search, progress=not args.quick, **study)
print("\n".join(result.summary()))

# 4. Use the best generator: OUT/study/best is a run directory, so every later stage takes it
#    (`ragan generate OUT/study/best ...`, `ragan evaluate ... --run OUT/study/best`).
generated = ragan.generate(
    result.best_dir,
    n=40 if args.quick else 1000,
    out=out / "synthetic",
    format="tfrecord",
    overwrite=True,
    progress=False,
)
print(
    f"\nbest trial {result.best['trial_id']}: {result.metric}={result.best['objective']['value']:.4g} "
    f"({result.extractor} features); hyperparameters {result.best['hyperparameters']}"
)
print(f"Outputs in {out}:")
print(f"  trials table  {out / 'study' / 'trials.md'} (and trials.csv, trials.png)")
print(f"  best model    {result.best_dir}")
print(f"  synthetic     {generated.out} ({generated.num_images} images)")
print(f"  MLflow        mlflow ui --backend-store-uri {result.mlflow['tracking_uri']}")
