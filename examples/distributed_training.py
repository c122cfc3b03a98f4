"""Distributed training: all GPUs of one machine (mirrored), and several machines (multi-worker).

Mirrored: ``ragan.train(..., distribution="mirrored")`` (``ragan train --distribution mirrored``)
copies the model to every visible GPU and splits each batch between them; ``batch_size`` stays
the global batch. Without a GPU this example splits the CPU into two logical devices first,
which exercises the same code (it does not make CPU training faster).

Multi-worker: start the same ``ragan train`` command on every machine, each with a TF_CONFIG
naming all workers and its own index (worker 0 writes the run directory and the MLflow run):
    TF_CONFIG='{"cluster": {"worker": ["host1:23456", "host2:23456"]}, "task": {"type": "worker", "index": 0}}' \
        ragan train dcgan --data prepared --out run --distribution multi_worker     # index 1 on host2
Every worker needs the prepared data at the same path and the same ragan version. This example
runs ``--workers`` such processes on this machine, on 127.0.0.1 with free ports.

Run:
    python examples/distributed_training.py --data prepared --out runs/dist --mode mirrored
    python examples/distributed_training.py --quick            # both modes, 16 px, 4 steps, on CPU
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import ragan
from ragan import import_tf

tf = import_tf()  # plain `import tensorflow` works too; this one hides TensorFlow's start-up noise

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", help="a prepared dataset (default: the bundled sample, prepared here)")
parser.add_argument("--mode", choices=("mirrored", "multi_worker", "both"), default="both")
parser.add_argument("--workers", type=int, default=2, help="local worker processes in multi-worker mode")
parser.add_argument("--out", help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="ragan-distributed-"))

if not tf.config.list_physical_devices("GPU"):
    # Logical devices must be set before TensorFlow initialises its runtime (first op or strategy).
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

data = args.data
if data is None:
    data = out / "prepared"
    ragan.prepare_dataset("sample:pneumoniamnist", data, image_size=16 if args.quick else 32, overwrite=True)
model = {"conditional": True, "latent_dim": 16 if args.quick else 64, "base_filters": 8 if args.quick else 32}
# batch_size is global: with 2 replicas each computes 8 (quick) or 64 images per step.
length = {"steps": 4, "batch_size": 16, "log_every": 2} if args.quick else {"kimg": 20, "batch_size": 128}

if args.mode in ("mirrored", "both"):
    run = ragan.train(
        "dcgan",
        data=data,
        out=out / "mirrored",
        config=model,
        train_config=length,
        distribution="mirrored",
        resume=True,
    )
    print(f"mirrored run: {run}")

if args.mode in ("multi_worker", "both"):
    # Free ports on this machine, one per worker (a real cluster lists host:port of each machine).
    probes = [socket.socket() for _ in range(args.workers)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{probe.getsockname()[1]}" for probe in probes]}
    for probe in probes:
        probe.close()
    flags = [f"--{key.replace('_', '-')}={str(value).lower()}" for key, value in {**model, **length}.items()]
    command = [
        sys.executable,
        "-m",
        "ragan",
        "train",
        "dcgan",
        "--data",
        str(data),
        "--out",
        str(out / "multi_worker"),
        "--distribution",
        "multi_worker",
        "--resume",
        *flags,
    ]
    workers, logs = [], []
    for index in range(args.workers):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        # The workers import this ragan, and on one machine each may use one GPU (none with --quick).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(ragan.__file__).parents[1]), env.get("PYTHONPATH")]))
        env["CUDA_VISIBLE_DEVICES"] = "" if args.quick else str(index)
        # Worker 0 (the chief) reports progress here; the others write to a log file each.
        log = None if index == 0 else open(out / f"worker-{index}.log", "w")
        logs += [log] if log else []
        workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT if log else None))
    statuses = [worker.wait() for worker in workers]
    for log in logs:
        log.close()
    if any(statuses):
        raise SystemExit(f"a worker failed: exit statuses {statuses} (logs: {out}/worker-*.log)")
    print(f"multi-worker run ({args.workers} workers): {out / 'multi_worker'}")
