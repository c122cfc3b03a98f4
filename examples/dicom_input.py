"""DICOM input: windowing, 16-bit output, patient-level splits, and no PHI in the output.

Prepares a folder of DICOM files twice: once through a CT window (8-bit, what a radiologist
sees) and once with the full stored range kept in 16 bits. Both are grouped by the DICOM
PatientID, so one patient's slices never sit in two splits. Finally every output file is
searched for the input's patient data (names, IDs, birth dates...): none may be there.

Without ``--data`` it builds a demo folder from pydicom's bundled test file ``CT_small.dcm``:
six made-up patients with three (shifted) slices each.

Run:
    python examples/dicom_input.py --data path/to/dicoms --window lung --out runs/dicom
    python examples/dicom_input.py --quick            # the demo folder at 16 px
The same from the command line:
    ragan prepare DIR --out prepared --window 40,400 --group-by dicom
    ragan prepare DIR --out prepared16 --window none --bit-depth 16 --group-by dicom
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

import ragan

# Header fields holding patient data; their values must not reach any output file.
PHI_FIELDS = ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "AccessionNumber", "StudyInstanceUID")

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", type=Path, help="folder of .dcm files (class sub-folders optional)")
parser.add_argument(
    "--window",
    default="soft-tissue",
    help="a CT window: 'center,width' or a preset (lung, bone...); 'auto' uses the file's (MR, X-ray)",
)
parser.add_argument("--out", help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="ragan-dicom-"))

data = args.data
if data is None:
    data = out / "demo_dicoms"
    data.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for patient in range(6):
        for slice_index in range(3):
            ds = template.copy()
            ds.PatientID, ds.PatientName = f"DEMO-PATIENT-{patient:03d}", f"Doe^Jane{patient}"
            ds.PatientBirthDate, ds.InstitutionName = "19700101", "Demo General Hospital"
            # Shifted pixels make each slice distinct (identical files would be dropped as duplicates).
            ds.PixelData = np.roll(ds.pixel_array, 3 * (3 * patient + slice_index), axis=1).tobytes()
            ds.save_as(data / f"patient{patient}_slice{slice_index}.dcm", enforce_file_format=True)

files = sorted(data.rglob("*.dcm"))[:500]  # headers of at most 500 files are enough for the check
headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
# Short values (e.g. a PatientID "7") would match random pixel bytes; check distinctive ones only.
phi = {str(h.get(name)) for h in headers for name in PHI_FIELDS if len(str(h.get(name) or "")) >= 6}

size = 16 if args.quick else 128
# Few patients in the demo: 50/25/25 so each split gets at least one of them.
split = (0.5, 0.25, 0.25) if args.data is None else (0.8, 0.1, 0.1)
common = dict(image_size=size, group_by="dicom", split=split, overwrite=True, progress=not args.quick)
windowed = ragan.prepare_dataset(data, out / "prepared-window", window=args.window, bit_depth=8, **common)
# window=None maps the whole stored value range to 16 bits: no windowing, and the same stored value
# gives the same output value in every slice (per-slice "minmax" would not).
full = ragan.prepare_dataset(data, out / "prepared-16bit", window=None, bit_depth=16, **common)

for title, folder in ((f"window {args.window}, 8-bit", "prepared-window"), ("full range, 16-bit", "prepared-16bit")):
    train = ragan.evaluation.read_split(out / folder, "train")
    print(
        f"{title:>24}: {train.images.dtype} pixels {train.images.min()}..{train.images.max()}, "
        f"{len(np.unique(train.images))} distinct values"
    )

# Patient-level split: each (salted, hashed) patient key appears in exactly one split.
splits_of = {}
for source in full.sources:
    splits_of.setdefault(source["group"], set()).add(source["split"])
assert all(len(s) == 1 for s in splits_of.values()), "a patient is in two splits"
print(
    f"{len(splits_of)} patients, each in one split: "
    + ", ".join(f"{s}: {sum(v == {s} for v in splits_of.values())}" for s in ("train", "val", "test"))
)

# Privacy: search every output byte for every patient value read from the input headers.
leaks = [(f, v) for f in out.glob("prepared-*/*") for v in phi if v.encode() in f.read_bytes()]
assert not leaks, f"patient data found in the output: {leaks[:3]}"
print(f"checked {len(phi)} patient values from {len(headers)} headers: none found in the output")
print(f"\nOutputs in {out}:\n  {out / 'prepared-window'}\n  {out / 'prepared-16bit'}")
