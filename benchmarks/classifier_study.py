"""Benchmark: seconds per classifier run of the study, in the main job's configuration.

The classifier study (``ragan evaluate``, ``ragan demo``) trains the small CNN once per arm and
seed. This script times such runs the way the study does them (one compiled model re-initialised
per run, early stopping on the real validation AUC, balanced class weights, test on the real test
split) on the main job's data: the bundled PneumoniaMNIST sample prepared at 32 px, with the
largest arm's 800 training images (the 400 real ones plus 400 augmented repeats, as in the
count-matched control). Run by hand, not in CI::

    python benchmarks/classifier_study.py                      # this tree, seeds 0..4
    python benchmarks/classifier_study.py --compare HEAD~3     # and an older commit, back to back

``--compare REF`` checks REF out in a temporary ``git worktree`` and runs the same timing there in
a subprocess right after this tree's, so both are measured under the same machine load; it prints
the ratio of the medians. ``--rounds N`` repeats both, alternating which goes first (this tree,
REF, REF, this tree, ...), and pools the runs of every round: on a shared machine whose load
drifts, that is fairer than one pass each. Besides seconds per run (what a user waits for, which
also depends on how many epochs early stopping lets each run last) it prints seconds per epoch.

Measured here (2 CPU cores shared with other jobs, load average ~10, TF 2.21, seeds 0,1,2, up to
20 epochs, patience 5) against the small CNN with 32/256 filters: median 43.8 s per run against
165.6 s, a 3.78x speed-up (311,442 parameters instead of 1,207,714; median 11 epochs both). Absolute
seconds depend on the load; compare the ratio.

Early-stopping patience 3 (the default since 2026-12-01) against 5, run back to back with
``--patience 5`` on the idle machine: median 17.1 s against 22.9 s per run (1.34x; seeds 0..4,
median 9 epochs against 11, mean test AUC 0.931 against 0.926).

Classifier version 2 (a stride-2 stem instead of the full-size stage at 32 px) with each run seeded
without clearing TensorFlow's kernel cache, against the code before them (``--compare main
--rounds 2``, 2026-12-06, load average 13-14 from other jobs): median 20.1 s against 32.8 s per
run (1.63x), 1.91 s against 2.95 s per epoch (1.55x); median 9 epochs against 8, mean test AUC
0.923 against 0.913 (5 seeds, twice each). Under that load a run takes 2.5x longer than on a nearly
idle machine (main: 11.8 s median at load 1-3 the same day); the ratios are what carries over.
On the idle machine that evening, version 2 alone: median 5.4 s per run (3.7-8.9 s, seeds 0..4),
0.56 s per epoch, median 9 epochs, mean test AUC 0.923.
Tried and not kept: one training iterator for all epochs (``repeat()`` and ``steps_per_epoch``),
2.03x per epoch with the above, but a lower test AUC in benchmarks/classifier_baseline.py at 28 and
32 px; bfloat16 (1.5x per step for version 1, nothing for version 2, and only on CPUs with
AVX512-BF16); XLA (3.4x slower per step).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_runs(prepared: Path, seeds: list[int], *, epochs: int, patience: int, train_images: int) -> list[dict]:
    """Time one study-like classifier run per seed with the ragan found on ``sys.path``."""
    import numpy as np

    from ragan.evaluation.classifier import (
        array_dataset,
        balanced_class_weights,
        build_classifier,
        evaluate_classifier,
        train_classifier,
    )
    from ragan.evaluation.mix import read_split
    from ragan.evaluation.study import _ReusableClassifier

    train, val, test = (read_split(prepared, name) for name in ("train", "val", "test"))
    repeats = np.resize(np.arange(len(train.labels)), max(train_images - len(train.labels), 0))
    images = np.concatenate([train.images, train.images[repeats]])
    labels = np.concatenate([train.labels, train.labels[repeats]])
    mask = np.arange(len(labels)) >= len(train.labels)  # the repeats are augmented, as in the control arm
    shape = train.images.shape[1:]
    start = time.perf_counter()
    reusable = _ReusableClassifier(
        lambda: build_classifier("small_cnn", image_size=shape[0], channels=shape[2], num_classes=2),
        learning_rate=1e-3,
    )
    build_seconds = time.perf_counter() - start
    val_dataset = array_dataset(val.images, val.labels, batch_size=256)
    test_dataset = array_dataset(test.images, test.labels, batch_size=256)
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        model = reusable.fresh(seed)
        dataset = array_dataset(images, labels, batch_size=64, shuffle=True, seed=seed, augment_mask=mask)
        trained = train_classifier(
            dataset,
            val_dataset,
            model=model,
            epochs=epochs,
            patience=patience,
            seed=seed,
            class_weight=balanced_class_weights(labels, 2),
            compile=False,
        )
        metrics = evaluate_classifier(trained.model, test_dataset)
        runs.append(
            {
                "seed": seed,
                "seconds": round(time.perf_counter() - start, 2),
                "train_seconds": round(trained.seconds, 2),
                "traced": not runs,  # the first run of a process also traces the train step
                "auc": metrics["auc"],
                "epochs_trained": trained.epochs_trained,
                "best_epoch": trained.best_epoch,
                "parameters": int(model.count_params()),
            }
        )
        print(
            f"  seed {seed}: {runs[-1]['seconds']:.1f} s, {trained.epochs_trained} epochs "
            f"(best {trained.best_epoch}), test AUC {metrics['auc']:.3f}",
            file=sys.stderr,
            flush=True,
        )
    return [{"build_seconds": round(build_seconds, 2)}] + runs


def _summary(name: str, runs: list[dict]) -> dict:
    import numpy as np

    timed = [run for run in runs if "seed" in run]
    seconds = np.array([run["seconds"] for run in timed])
    auc = np.array([run["auc"] for run in timed])
    per_epoch = [run["train_seconds"] / run["epochs_trained"] for run in timed if run.get("traced") is False]
    summary = {
        "code": name,
        "median_seconds": float(np.median(seconds)),
        "median_seconds_per_epoch": float(np.median(per_epoch)) if per_epoch else None,
        "mean_auc": float(auc.mean()),
        "median_epochs": float(np.median([run["epochs_trained"] for run in timed])),
        "parameters": timed[0]["parameters"],
        "runs": runs,
    }
    epoch_text = f", {summary['median_seconds_per_epoch']:.2f} s per epoch" if per_epoch else ""
    print(
        f"{name}: median {summary['median_seconds']:.1f} s per run ({seconds.min():.1f}-{seconds.max():.1f})"
        f"{epoch_text}, "
        f"median {summary['median_epochs']:g} epochs, {summary['parameters']:,} parameters, "
        f"mean test AUC {summary['mean_auc']:.3f} ({len(timed)} runs)",
        flush=True,
    )
    return summary


def _run_elsewhere(tree: Path, prepared: Path, args) -> list[dict]:
    """Run :func:`time_runs` with the ragan of ``tree`` in a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(prepared),
        "--seeds",
        args.seeds,
        "--epochs",
        str(args.epochs),
        "--patience",
        str(args.patience),
        "--train-images",
        str(args.train_images),
    ]
    result = subprocess.run(command, env=env, cwd=tree, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds, one run each")
    parser.add_argument("--epochs", type=int, default=20, help="most epochs per run (the study's default)")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience (the study's default)")
    parser.add_argument("--train-images", type=int, default=800, help="training images per run")
    parser.add_argument("--compare", metavar="REF", help="also time this git commit, in a temporary worktree")
    parser.add_argument("--rounds", type=int, default=1, help="with --compare: alternate the two this many times")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.worker is not None:
        runs = time_runs(args.worker, seeds, epochs=args.epochs, patience=args.patience, train_images=args.train_images)
        print(json.dumps(runs))
        return 0

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        prepared = work / "prepared"
        import ragan

        # The demo's data: the bundled sample at 32 px.
        ragan.prepare_dataset("sample:pneumoniamnist", prepared, image_size=32, channels=1, seed=0, progress=False)
        trees = [("this tree", ROOT)]
        old = work / "compare"
        if args.compare:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.compare],
                check=True,
                capture_output=True,
            )
            trees.append((args.compare, old))
        runs = {name: [] for name, _ in trees}
        try:
            for round_index in range(args.rounds if args.compare else 1):
                # This tree first in even rounds, last in odd ones: a load drift favours neither.
                for name, tree in trees if round_index % 2 == 0 else trees[::-1]:
                    print(f"{name} ({tree}), round {round_index + 1}:", file=sys.stderr, flush=True)
                    runs[name] += _run_elsewhere(tree, prepared, args)
        finally:
            if args.compare:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                    check=False,
                    capture_output=True,
                )
        results = [_summary(name, tree_runs) for name, tree_runs in runs.items()]
        if args.compare:
            ratio = results[1]["median_seconds"] / results[0]["median_seconds"]
            print(f"speed-up: {ratio:.2f}x ({args.compare} median / this tree's median)")
            speedup = {"speedup": ratio}
            if results[0]["median_seconds_per_epoch"] and results[1]["median_seconds_per_epoch"]:
                speedup["speedup_per_epoch"] = (
                    results[1]["median_seconds_per_epoch"] / results[0]["median_seconds_per_epoch"]
                )
                print(f"per epoch: {speedup['speedup_per_epoch']:.2f}x")
            results.append(speedup)
        results.append({"load_average": os.getloadavg()})
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
