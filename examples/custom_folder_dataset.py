"""Your own folder of images: prepare it, train a conditional GAN, generate images per class.

Any folder with one sub-folder per class works (the brain tumour MRI layout is the default:
``Training/glioma_tumor/*.jpg``, ``Training/no_tumor/*.jpg``, ...). The example prepares it
with patient grouping and resizing options, trains a conditional DCGAN and generates, for each
class, enough images to top it up to the largest class (plus ``--extra-per-class``).

Run:
    python examples/custom_folder_dataset.py --data path/to/Training --out runs/mri
    python examples/custom_folder_dataset.py --data DIR --group-csv patients.csv --group-column patient_id
    python examples/custom_folder_dataset.py --quick     # 16 px, 28 images, 4 steps: a smoke run

The same from the command line:
    ragan prepare DIR --out prepared --image-size 64 --resize pad --group-by csv --group-csv F --group-column C
    ragan train dcgan --data prepared --out run --conditional true --augment diffaugment --kimg 200
    ragan generate run --n 400 --labels no_tumor --out synthetic
"""

import argparse
import csv
import shutil
import tempfile
from pathlib import Path

import ragan

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brain_tumor_mri" / "Training"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with one sub-folder per class")
parser.add_argument("--out", help="output folder (default: a new temporary folder)")
parser.add_argument("--group-csv", help="CSV with a 'path' column and a patient column (keeps patients in one split)")
parser.add_argument("--group-column", default="patient_id", help="the patient column of --group-csv")
parser.add_argument("--extra-per-class", type=int, default=100, help="images per class beyond rebalancing")
parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
args = parser.parse_args()
if not args.data.is_dir():
    parser.exit(2, f"--data {args.data} is not a folder; pass a folder with one sub-folder per class.\n")
out = Path(args.out or tempfile.mkdtemp(prefix="ragan-folder-"))
data, group_csv = args.data, args.group_csv

if args.quick:
    # A small copy keeping the classes' imbalance: 1% of each class, at least 4 images.
    data = out / "subset"
    shutil.rmtree(data, ignore_errors=True)
    for class_dir in sorted(p for p in args.data.iterdir() if p.is_dir()):
        files = sorted(class_dir.iterdir())
        (data / class_dir.name).mkdir(parents=True)
        for file in files[: max(4, len(files) // 100)]:
            shutil.copyfile(file, data / class_dir.name / file.name)
    if group_csv is None:
        # This data set has no patient IDs. The CSV below only *pretends* that every two files of
        # a class come from one patient, to show the format: paths relative to --data, one key each.
        group_csv = out / "patients.csv"
        with open(group_csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", args.group_column])
            for index, file in enumerate(sorted(data.glob("*/*"))):
                writer.writerow([file.relative_to(data).as_posix(), f"{file.parent.name}-{index // 2}"])

# Brain MRI slices are mostly 512x512 but not all square: "pad" keeps the whole head instead of
# cropping its edges. With a patient CSV no patient is split between train, val and test.
manifest = ragan.prepare_dataset(
    data,
    out / "prepared",
    image_size=16 if args.quick else 64,
    channels=1,
    resize_mode="pad",
    split=(0.8, 0.1, 0.1),
    seed=0,
    overwrite=True,
    **({"group_by": "csv", "group_csv": group_csv, "group_column": args.group_column} if group_csv else {}),
)
counts = manifest.splits["train"].class_counts
print(f"prepared {manifest.splits['train'].num_examples} training images: {counts}; skipped {len(manifest.skipped)}")

# Conditional: one generator for all classes, asked for a class at generation time.
# DiffAugment (Zhao et al. 2020) keeps the discriminator from memorising a small training set.
run = ragan.train(
    "dcgan",
    data=out / "prepared",
    out=out / "run",
    resume=True,  # re-running continues the run
    config={
        "conditional": True,
        "augment": "diffaugment",
        "latent_dim": 32 if args.quick else 128,
        "base_filters": 8 if args.quick else 64,
    },
    train_config={"steps": 4, "batch_size": 8, "log_every": 2} if args.quick else {"kimg": 200},
)

# Per class: top every class up to the largest one, plus a few more of each. `labels` takes one
# class name per image; PNGs land in one sub-folder per class.
extra = 2 if args.quick else args.extra_per_class
wanted = {name: max(counts.values()) - count + extra for name, count in counts.items()}
labels = [name for name, count in wanted.items() for _ in range(count)]
result = ragan.generate(run, n=len(labels), labels=labels, out=out / "synthetic", format="png", seed=0, overwrite=True)
print(f"generated per class: {wanted}")
print(f"\nOutputs in {out}:\n  prepared data  {out / 'prepared'}\n  run            {run}")
print(f"  synthetic      {result.out} (one folder per class)")
