"""Transfer learning from a published StyleGAN2-ADA network to your medical images.

NVIDIA's StyleGAN2-ADA networks (FFHQ, MetFaces, AFHQ, BreCaHAD, CIFAR-10) are PyTorch pickles.
ragan reads them without PyTorch and without running any code stored in them, then
1. imports the network as a ragan run folder (``ragan import-weights``) and draws a few images
   from it as it is,
2. prepares your images at the network's resolution (greyscale: the RGB network's colour layers
   are converted so that it keeps its grey output),
3. fine-tunes it on them (``init_from=FILE.pkl``, the network's own architecture, Freeze-D on the
   discriminator's first layers, ADA), a resumable run logged to MLflow with the source file's
   name and SHA-256,
4. generates images from the fine-tuned generator.

Without ``--network`` (or with ``--quick``) it uses a tiny official-format network from
``../shared/data/stylegan2_ada_fixtures`` and the bundled PneumoniaMNIST sample at 32 px.

Run:
    python examples/transfer_learning.py --network brecahad.pkl --data path/to/images --kimg 200 --out runs/tl
    python examples/transfer_learning.py --quick                 # the fixture network, a few steps
The same from the command line:
    ragan import-weights brecahad.pkl --out runs/brecahad --channels 1
    ragan prepare path/to/images --out prepared --image-size 512 --channels 1
    ragan train stylegan2 --data prepared --out runs/tl --init-from brecahad.pkl --freeze-d 10 --kimg 200
    ragan generate runs/tl --n 100 --out synthetic --truncation 0.7
"""

import argparse
import tempfile
from pathlib import Path

import ragan
from ragan.models.stylegan2.pickle_import import import_network_pickle, network_pickle_config, write_imported_run

FIXTURE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "stylegan2_ada_fixtures"
    / "sg2ada-32px-gray-uncond.pkl"
)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--network", type=Path, help="an official StyleGAN2-ADA .pkl (default: a tiny test network)")
parser.add_argument("--data", help="images to fine-tune on: a folder, .npz, or 'sample:pneumoniamnist' (default)")
parser.add_argument("--channels", type=int, choices=(1, 3), default=1, help="image channels of your data")
parser.add_argument("--kimg", type=float, default=100.0, help="fine-tuning length in thousands of images")
parser.add_argument("--freeze-d", type=int, default=4, help="discriminator layers to keep frozen (Freeze-D)")
parser.add_argument("--out", help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="ragan-transfer-"))
network = args.network or FIXTURE
if not network.is_file():
    parser.error(f"{network} does not exist; pass --network FILE.pkl")

# 1. The published network as it is: a run folder, and a few images from it.
_, shape = network_pickle_config(network)
gan, info = import_network_pickle(network, channels=args.channels)
imported = write_imported_run(gan, info, out / "imported", overwrite=True)
print(f"imported {info['file']} (sha256 {info['sha256'][:12]}..., {shape['image_size']} px) to {imported}")
before = ragan.generate(imported, n=8, out=out / "before", seed=0, truncation=0.7, overwrite=True, progress=False)

# 2. Your images at the network's resolution.
prepared = ragan.prepare_dataset(
    args.data or "sample:pneumoniamnist",
    out / "prepared",
    image_size=shape["image_size"],
    channels=args.channels,
    overwrite=True,
)

# 3. Fine-tune: the architecture comes from the pickle; run it again with resume=True to continue.
steps = {"steps": 4, "batch_size": 4, "log_every": 2} if args.quick else {"kimg": args.kimg}
run = ragan.train(
    "stylegan2",
    data=out / "prepared",
    out=out / "finetuned",
    init_from=str(network),
    config={"freeze_d": args.freeze_d, "augment": "ada"},
    resume=True,
    **steps,
)

# 4. Images from the fine-tuned generator.
after = ragan.generate(run, n=8, out=out / "after", seed=0, truncation=0.7, overwrite=True, progress=False)
print(f"before fine-tuning: {before.out}\nafter fine-tuning:  {after.out}\nrun: {run}")
