"""StyleGAN2 on an NVIDIA GPU: sec/kimg in float32 and mixed precision against the official code's
published figures, and a MirroredStrategy smoke test. The one script to run on a GPU machine::

    python benchmarks/gpu_check.py                       # paper256 and auto at 256 px, 3 channels
    python benchmarks/gpu_check.py --cfgs paper256 --ticks 5 --json gpu.json

Each measurement runs in a process of its own (a fresh TensorFlow, one dtype policy), as
``ragan train`` would: the model is built under the policy ``--mixed-precision true`` picks
(``mixed_bfloat16`` on GPUs of compute capability 8.0 and above, else ``mixed_float16`` with loss
scaling; fp16/bf16 only in the ``num_fp16_res`` = 4 highest resolutions, with the conv clamp 256),
trained with ``fit`` on an in-memory batch of random images (input cost excluded) with
``--augment none``, and timed in ticks of ``--tick-steps`` steps: the first tick (tracing
included) is the start-up, the mean of the next ``--ticks`` the steady state.

Published figures of the official code (NVlabs/stylegan2-ada-pytorch, mixed precision), to compare
with: ``--cfg auto`` at 256 px, 12.5 s/kimg on one A100 (stylegan3's docs/configs.md) and 21.6-24.2
s/kimg on one V100 (stylegan2-ada-pytorch's README, ``--aug ada`` with FID). Their ``paper256``
runs batch 64 where ``auto`` at 256 px runs 16, so compare ``auto`` with the published ``auto``.

The smoke test trains ``small`` at 64 px for a few steps under ``MirroredStrategy`` over every GPU
(one GPU split in two logical devices when there is only one) with ADA and both lazy
regularisers, and checks the step counts, the finite losses and that p moved.

Without a GPU the script says so in one line and exits 2 (``--device cpu`` runs the same code on
tiny settings, to test the script itself).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (cfg, resolution) -> published official sec/kimg: (low, high, where).
PUBLISHED = {
    ("auto", 256): [
        (12.5, 12.5, "one A100, stylegan3 docs/configs.md"),
        (21.6, 24.2, "one V100, stylegan2-ada-pytorch README"),
    ],
}


def _setup(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO))
    from ragan._tf import import_keras, import_tf

    return import_tf(), import_keras()


def _policy(tf) -> str:
    """The policy ``ragan train --mixed-precision true`` picks for the first GPU."""
    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    return "mixed_bfloat16" if tuple(details.get("compute_capability", (0, 0))) >= (8, 0) else "mixed_float16"


def speed_worker(args) -> dict:
    """One (cfg, precision) measurement; runs in its own process."""
    tf, keras = _setup(args)
    import numpy as np

    from ragan.models import StyleGAN2

    policy = "float32"
    if args.precision == "mixed":
        policy = _policy(tf) if args.device == "gpu" else "mixed_float16"
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    overrides = {"cfg": args.cfg, "augment": "none", **json.loads(args.overrides)}
    start = time.perf_counter()
    keras.config.set_dtype_policy(policy)
    try:
        with tf.device(device):
            gan = StyleGAN2(overrides, image_size=args.size, channels=args.channels, seed=0)
    finally:
        keras.config.set_dtype_policy("float32")
    batch = args.batch or gan.options.batch_size
    with tf.device(device):
        gan.compile()
        real = np.random.default_rng(0).uniform(-1, 1, (batch, args.size, args.size, args.channels)).astype("float32")
        data = tf.data.Dataset.from_tensors(real).repeat()
        build_s = time.perf_counter() - start
        ticks = []
        for _ in range(1 + args.ticks):
            begin = time.perf_counter()
            history = gan.fit(data, steps_per_epoch=args.tick_steps, epochs=1, verbose=0)
            ticks.append(time.perf_counter() - begin)
    losses = {name: float(np.ravel(values)[-1]) for name, values in history.history.items()}
    kimg = args.tick_steps * batch / 1000
    return {
        "cfg": args.cfg,
        "precision": args.precision,
        "policy": policy,
        "batch": batch,
        "build_s": build_s,
        "first_tick_s": ticks[0],
        "sec_per_kimg": statistics.mean(ticks[1:]) / kimg,
        "tick_sec_per_kimg": [t / kimg for t in ticks[1:]],
        "losses": losses,
        "finite": all(np.isfinite(list(losses.values()))),
    }


def mirrored_worker(args) -> dict:
    """MirroredStrategy smoke test; runs in its own process (devices are set before TF starts)."""
    tf, _ = _setup(args)
    import numpy as np

    kind = "GPU" if args.device == "gpu" else "CPU"
    physical = tf.config.list_physical_devices(kind)
    if len(physical) == 1:  # two replicas on one device
        limit = {"memory_limit": 4096} if kind == "GPU" else {}
        tf.config.set_logical_device_configuration(
            physical[0], [tf.config.LogicalDeviceConfiguration(**limit) for _ in range(2)]
        )
    devices = [device.name for device in tf.config.list_logical_devices(kind)]
    from ragan.models import StyleGAN2

    strategy = tf.distribute.MirroredStrategy(devices)
    config = {
        "cfg": "small",
        "augment": "ada",
        "augment_p": 0.5,
        "ada_kimg": 10,
        "r1_interval": 2,
        "pl_interval": 2,
        **json.loads(args.overrides),
    }
    with strategy.scope():
        gan = StyleGAN2(config, image_size=args.size, channels=1, seed=0)
        gan.compile()
    per_replica = 4
    images = np.random.default_rng(0).uniform(-1, 1, (64, args.size, args.size, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(images).batch(per_replica * len(devices), drop_remainder=True).repeat()
    gan._distribute_strategy = None  # noqa: SLF001 - as ragan.train runs fit under a strategy
    with strategy.scope():
        history = gan.fit(strategy.experimental_distribute_dataset(data), steps_per_epoch=5, epochs=1, verbose=0)
    losses = {name: float(np.ravel(values)[-1]) for name, values in history.history.items()}
    checks = {
        "steps == 5": int(gan.step_counter.numpy()) == 5,
        "G updates == 5 + 3 path-length": int(gan.g_optimizer.iterations.numpy()) == 8,
        "D updates == 5 + 3 R1": int(gan.d_optimizer.iterations.numpy()) == 8,
        "losses finite": all(np.isfinite(list(losses.values()))),
        "ADA moved p": float(gan.augment_probability.numpy()) != 0.5,
        "pl_mean > 0": float(gan.pl_mean.numpy()) > 0,
    }
    return {"replicas": len(devices), "devices": devices, "losses": losses, "checks": checks}


def _run(args, worker: str, **options) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", worker]
    for name, value in {**vars(args), **options}.items():
        if name in ("worker", "json", "cfgs", "skip_mirrored") or value is None:
            continue
        command += [f"--{name.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("JSON")]
    if done.returncode or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1][4:])


def _gpu_count() -> int:
    code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; import tensorflow as tf; "
    code += "print(len(tf.config.list_physical_devices('GPU')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    try:
        return int(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfgs", nargs="+", default=["paper256", "auto"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=3, choices=[1, 3])
    parser.add_argument("--batch", type=int, default=0, help="batch size (0: the preset's)")
    parser.add_argument("--tick-steps", type=int, default=16)
    parser.add_argument("--ticks", type=int, default=3, help="steady-state ticks after the first")
    parser.add_argument("--overrides", default="{}", help="JSON of StyleGAN2 hyperparameters to override")
    parser.add_argument("--skip-mirrored", action="store_true", help="skip the MirroredStrategy smoke test")
    parser.add_argument("--device", choices=["gpu", "cpu"], default="gpu", help="cpu: test this script itself")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--worker", choices=["speed", "mirrored"], help=argparse.SUPPRESS)
    parser.add_argument("--cfg", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = speed_worker(args) if args.worker == "speed" else mirrored_worker(args)
        print("JSON" + json.dumps(result))
        return 0

    if args.device == "gpu" and _gpu_count() == 0:
        print(
            "gpu_check.py: TensorFlow sees no GPU on this machine (needs an NVIDIA GPU with a CUDA build of "
            "TensorFlow, e.g. pip install 'tensorflow[and-cuda]'); nothing was measured.",
            file=sys.stderr,
        )
        return 2
    results = {"size": args.size, "channels": args.channels, "speed": [], "mirrored": None}
    print(f"StyleGAN2, {args.size} px, {args.channels} channel(s), --augment none, ticks of {args.tick_steps} steps")
    print(f"{'cfg':<10}{'precision':<10}{'policy':<16}{'batch':>6}{'s/kimg':>9}{'1st tick s':>12}  published official")
    failed = False
    for cfg in args.cfgs:
        for precision in ("fp32", "mixed"):
            row = _run(args, "speed", cfg=cfg, precision=precision)
            results["speed"].append(row)
            if "error" in row:
                print(f"{cfg:<10}{precision:<10}failed: {row['error']}")
                failed = True
                continue
            failed |= not row["finite"]
            published = "; ".join(
                f"{low:g}" + (f"-{high:g}" if high != low else "") + f" s/kimg ({where})"
                for low, high, where in PUBLISHED.get((cfg, args.size), [])
            )
            print(
                f"{cfg:<10}{precision:<10}{row['policy']:<16}{row['batch']:>6}{row['sec_per_kimg']:>9.1f}"
                f"{row['first_tick_s']:>12.1f}  {published or '-'}" + ("" if row["finite"] else "  NON-FINITE LOSS")
            )
    if not args.skip_mirrored:
        smoke = _run(args, "mirrored", size=min(args.size, 64))
        results["mirrored"] = smoke
        if "error" in smoke:
            print(f"MirroredStrategy smoke test failed: {smoke['error']}")
            failed = True
        else:
            bad = [name for name, ok in smoke["checks"].items() if not ok]
            failed |= bool(bad)
            print(
                f"MirroredStrategy over {smoke['replicas']} replicas: "
                + ("all checks passed" if not bad else "FAILED: " + ", ".join(bad))
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
