"""The augmentation study: does adding synthetic images help a classifier on held-out real images?

The same classifier is trained on several training sets ("arms") for several seeds and always
tested on the real test split:
  real                   real training images only
  real+synthetic@f       plus synthetic images making up the fraction f of the training set
  count_matched@f        the control: real images repeated and augmented to the same count
  real+synthetic_rebalance / count_matched_rebalance   minority classes topped up (and control)
A gain is credited to the synthetic images only where the synthetic arm beats its count-matched
control across seeds. ``ragan.evaluate`` runs the study and adds FID/KID, diversity and the
memorisation check to one HTML report; ``ragan.evaluation.mix_datasets`` writes a real+synthetic
mix for your own classifier.

Run:
    python examples/augmentation_study.py --out runs/study      # bundled sample, 3 seeds, 20 epochs per arm
    python examples/augmentation_study.py --real prepared --synthetic synthetic --run runs/dcgan
    python examples/augmentation_study.py --quick               # 16 px, one seed, one epoch: a smoke run
"""

import argparse
import tempfile
from pathlib import Path

import ragan

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--real", help="a labelled prepared dataset (default: the bundled sample, prepared here)")
parser.add_argument("--synthetic", help="a synthetic prepared dataset (default: trains a GAN and generates one)")
parser.add_argument("--run", help="the training run that made --synthetic (the report is logged to its MLflow run)")
parser.add_argument("--seeds", default="0,1,2", help="seeds of the study (more seeds: a more honest spread)")
parser.add_argument("--out", help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="ragan-study-"))
real, synthetic, run = args.real, args.synthetic, args.run

if real is None:
    real = out / "prepared"
    ragan.prepare_dataset("sample:pneumoniamnist", real, image_size=16 if args.quick else 32, overwrite=True)
if synthetic is None:
    # A synthetic set needs labels for the study: train a conditional GAN and generate both classes.
    run = ragan.train(
        "dcgan",
        data=real,
        out=out / "run",
        resume=True,
        config={"conditional": True, "base_filters": 8 if args.quick else 32, "latent_dim": 32 if args.quick else 64},
        train_config={"steps": 4, "batch_size": 16, "log_every": 2} if args.quick else {"kimg": 20},
    )
    synthetic = out / "synthetic"
    # Enough of each class for every arm: with the sample's ~3:1 imbalance, rebalancing the
    # minority class takes about as many synthetic images as the larger class holds.
    ragan.generate(run, n=400 if args.quick else 2000, out=synthetic, format="tfrecord", seed=1, overwrite=True)

seeds = (0,) if args.quick else tuple(int(s) for s in args.seeds.split(","))
report = ragan.evaluate(
    real,
    synthetic,
    out=out / "report",
    generator_run=run,
    overwrite=True,
    seeds=seeds,
    synthetic_fractions=(0.2,) if args.quick else (0.1, 0.2, 0.5),
    rebalance=not args.quick,
    # Quick: one training epoch per arm and small metric subsets, only to show the outputs.
    **({"epochs": 1, "max_images": 64, "kid_subsets": 5, "diversity_pairs": 20} if args.quick else {}),
)

print("\n" + report.study.table())
print("\nSynthetic arms against their baselines (AUC, paired by seed):")
for row in report.study.comparisons("auc"):
    print(
        f"  {row['arm']:<28} vs {row['baseline']:<26} {row['mean_difference']:+.3f} ± {row['std_difference']:.3f}"
        f"   better in {row['wins']} of {len(row['seeds'])} seeds"
    )

# The real+synthetic@0.2 training set as an ordinary prepared dataset: real val/test copied unchanged,
# so your own classifier (e.g. `ragan.load_dataset(out / "mixed", "train")`) is still tested on real images.
mix = ragan.evaluation.mix_datasets(real, synthetic, out / "mixed", synthetic_fraction=0.2, overwrite=True)
print(f"\nmixed dataset: {mix.num_real} real + {mix.num_synthetic} synthetic training images -> {out / 'mixed'}")
print(f"report: {report.html_path}\nstudy:  {report.out / 'study.json'}")
