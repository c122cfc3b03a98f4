"""Benchmark: StyleGAN2-ADA (``small`` + ADA) against DCGAN (+ DiffAugment) on PneumoniaMNIST.

Both GANs are conditional, trained on the full PneumoniaMNIST train split at 32 px for the same
budget of real images shown (``--kimg``, at least 100 for a meaningful comparison), then each
generates as many labelled images as the real train split holds, in its class proportions, and
``ragan.evaluate`` measures

* KID with the domain feature extractor (a classifier trained on the real data; lower is better),
* the synthetic-only arm's test AUC: a classifier trained on synthetic images only, tested on the
  official real test split ("train on synthetic, test on real"; higher is better),
* diversity (mean pairwise MS-SSIM of synthetic images, next to the real images'),
* the membership-inference audit (the report's Privacy section): the ROC AUC, 95 % interval and
  true-positive rate at 1 % false positives of telling the 4,708 training images from the 624
  test images by their distance to the nearest synthetic image (domain features, pixels) and by
  the discriminator's score (the saved model's, and the last checkpoint's when it is newer).

Run by hand, not in CI (hours on a CPU at 100 kimg; use a GPU or fewer kimg)::

    python benchmarks/gan_quality.py --kimg 100 --out runs/gan_quality
    python benchmarks/gan_quality.py --kimg 5 --seeds 0 --gans dcgan,stylegan2     # a short look

Runs resume: re-running the same command continues interrupted training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NPZ = ROOT.parent / "shared" / "data" / "pneumoniamnist" / "pneumoniamnist.npz"

CONFIGS = {
    "dcgan": {"conditional": True, "augment": "diffaugment", "latent_dim": 64, "base_filters": 32},
    "stylegan2": {"cfg": "small", "conditional": True, "augment": "ada"},
}
BATCH = {"dcgan": 64, "stylegan2": 32}


def proportional_labels(class_counts: dict, class_names: list, n: int) -> list[int]:
    """``n`` labels in the real class proportions, classes interleaved."""
    counts = np.array([class_counts.get(name, 0) for name in class_names], dtype=np.float64)
    wanted = np.floor(counts / counts.sum() * n).astype(int)
    wanted[np.argmax(counts)] += n - wanted.sum()
    labels = np.concatenate([np.full(k, c) for c, k in enumerate(wanted)])
    return np.random.default_rng(0).permutation(labels).tolist()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ, help="the official pneumoniamnist.npz")
    parser.add_argument("--out", type=Path, default=Path("runs/gan_quality"))
    parser.add_argument("--kimg", type=float, default=100.0, help="training budget per GAN (thousands of images)")
    parser.add_argument("--gans", default="dcgan,stylegan2")
    parser.add_argument("--seeds", default="0,1", help="classifier seeds of the evaluation")
    parser.add_argument(
        "--n-synthetic", type=int, default=None, help="images per GAN (default: the train split's size)"
    )
    args = parser.parse_args(argv)
    if not args.npz.is_file():
        parser.error(f"{args.npz} does not exist; pass --npz")

    import ragan
    from ragan.data.manifest import read_manifest
    from ragan.evaluation.report import _headline_metrics

    args.out.mkdir(parents=True, exist_ok=True)
    prepared = args.out / "prepared32"
    if not (prepared / "manifest.json").is_file():
        ragan.prepare_dataset(args.npz, prepared, image_size=32, channels=1, resize_mode="stretch", progress=False)
    manifest = read_manifest(prepared)
    train = manifest.split("train")
    n = args.n_synthetic or train.num_examples
    labels = proportional_labels(train.class_counts, list(manifest.class_names), n)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    rows = []
    for name in [g.strip() for g in args.gans.split(",") if g.strip()]:
        run = args.out / f"run-{name}"
        started = time.perf_counter()
        ragan.train(
            name,
            data=prepared,
            out=run,
            config=CONFIGS[name],
            kimg=args.kimg,
            batch_size=BATCH[name],
            resume=True,
            progress=False,
        )
        train_seconds = time.perf_counter() - started
        synthetic = args.out / f"synthetic-{name}"
        ragan.generate(
            run, n=n, out=synthetic, format="tfrecord", labels=labels, seed=1, overwrite=True, progress=False
        )
        report = ragan.evaluate(
            real=prepared,
            synthetic=synthetic,
            out=args.out / f"report-{name}",
            generator_run=run,
            seeds=seeds,
            synthetic_fractions=(0.0,),
            overwrite=True,
            progress=False,
        )
        metrics = _headline_metrics(report.data)
        diversity = report.data.get("diversity") or {}
        rows.append(
            {
                "gan": name,
                "kimg": args.kimg,
                "train_s": round(train_seconds, 1),
                "kid_domain": metrics.get("eval.kid.domain"),
                "synthetic_only_auc": metrics.get("eval.study.synthetic_only.auc"),
                "real_auc": metrics.get("eval.study.real.auc"),
                "ms_ssim_synthetic": diversity.get("synthetic_ms_ssim"),
                "ms_ssim_real": diversity.get("real_ms_ssim"),
                "privacy_finding": (report.data.get("privacy") or {}).get("finding"),
                "membership": {
                    attack["key"]: {
                        "auc": attack["auc"],
                        "ci_low": attack["ci_low"],
                        "ci_high": attack["ci_high"],
                        "tpr_at_1pct_fpr": attack["tpr_at_fpr"]["0.01"],
                        **{f"floor_{name}": floor["auc"] for name, floor in (attack.get("floors") or {}).items()},
                    }
                    for attack in (report.data.get("privacy") or {}).get("attacks", [])
                },
                "privacy_sentences": (report.data.get("privacy") or {}).get("sentences", []),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    print(f"\nPneumoniaMNIST 32 px, {args.kimg:g} kimg per GAN, {n} synthetic images, classifier seeds {seeds}")
    header = ("gan", "train s", "KID (domain)", "synthetic-only AUC", "real AUC", "MS-SSIM synth / real")
    print(" | ".join(header))
    for row in rows:

        def fmt(value, digits=4):
            return "-" if value is None else f"{value:.{digits}g}"

        print(
            " | ".join(
                [
                    row["gan"],
                    fmt(row["train_s"], 5),
                    fmt(row["kid_domain"]),
                    fmt(row["synthetic_only_auc"], 3),
                    fmt(row["real_auc"], 3),
                    f"{fmt(row['ms_ssim_synthetic'], 3)} / {fmt(row['ms_ssim_real'], 3)}",
                ]
            )
        )
    print("\nMembership inference (training vs test images): AUC [95 % interval], TPR at 1 % FPR")
    for row in rows:
        for key, attack in row["membership"].items():
            floor = "".join(
                f"; floor, {key[len('floor_') :].replace('_', ' ')}: {value:.3f}"
                for key, value in attack.items()
                if key.startswith("floor_")
            )
            print(
                f"{row['gan']} | {key} | {attack['auc']:.3f} [{attack['ci_low']:.3f}, {attack['ci_high']:.3f}] | "
                f"{attack['tpr_at_1pct_fpr']:.3f}{floor}"
            )
        for sentence in row["privacy_sentences"]:
            print(f"  {sentence}")
    (args.out / "gan_quality.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
