"""Benchmark: wall time and peak memory of every stage at 256, 512 and 1024 px.

For each size it runs, as a user would, ``ragan prepare`` (brain MRI JPEGs, mostly 512x512, one
channel), ``ragan train stylegan2 --cfg small`` (a few steps: the cost of starting a run, mostly
graph tracing, not of training one), ``ragan generate --format tfrecord`` and ``ragan evaluate
--quick`` (and with ``--full`` the full evaluation), and prints a table. No 1024-px medical set is
at hand: at 1024 px ``prepare`` enlarges the 512-px MRI images (its resize), which costs what
real 1024-px images would downstream. Run by hand, not in CI::

    python benchmarks/high_resolution.py                                   # 256/512/1024, 200 real, 100 synthetic
    python benchmarks/high_resolution.py --sizes 512 --real 1250 --synthetic 1000 --full   # the README's figure

Each command runs in its own process; its children are prepare's decoding workers and evaluate's
classifier process (which trains at 128 px and up). Its peak memory, the ``peak RSS GB`` column,
is the largest resident set the command's processes held at one time: the larger of the sum of
their current resident sets (``VmRSS``, sampled every 50 ms from ``/proc``) and the largest one
process's own peak (``VmHWM``, kept by the kernel, so no spike of a single process is missed). The
``bound GB`` column is the sum of every process's own peak, an upper bound that counts a child and
its parent at their highest even when they were not at the same time. Linux only.
The images are taken in name order, the same number from each class (``--real`` in all; the
prepared splits are 80/10/10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "brain_tumor_mri" / "Training"
STAGES = ("prepare", "train", "generate", "evaluate")


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read().decode(errors="replace")
            except OSError:
                continue
            # The command name (2nd field) may hold spaces; the fields after its ')' are fixed.
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return children


def _resident(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of ``pid`` in bytes; zeros once it is gone."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return found.get("VmRSS", 0), found.get("VmHWM", 0)


def measured(command: list[str], log: Path) -> dict:
    """Run ``command``; its wall time and the peak RSS of its process tree (``timeout`` excluded)."""
    start = time.perf_counter()
    with open(log, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        peaks: dict[int, int] = {}
        together = [0]  # the largest sum of the processes' current resident sets
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                tree = _children()
                found, stack = [], [process.pid]
                while stack:
                    pid = stack.pop()
                    found.append(pid)
                    stack.extend(tree.get(pid, []))
                now = 0
                for pid in found:
                    resident, peak = _resident(pid)
                    now += resident
                    peaks[pid] = max(peaks.get(pid, 0), peak)
                together[0] = max(together[0], now)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        returncode = process.wait()
        stop.set()
        sampler.join()
    seconds = time.perf_counter() - start
    peak = max([together[0], *peaks.values()])
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak / 1e9, 2),
        "bound_rss_gb": round(sum(peaks.values()) / 1e9, 2),
        "processes": len(peaks),
        "returncode": returncode,
    }


def linked_source(data: Path, target: Path, count: int) -> tuple[Path, list[str]]:
    """Hard-link ``count`` images (the same number per class, by name) into ``target``; the class names."""
    classes = sorted(p for p in data.iterdir() if p.is_dir())
    per_class = -(-count // len(classes))
    if target.is_dir():  # kept from an earlier run on this --work folder
        return target, [c.name for c in classes]
    for class_dir in classes:
        (target / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.iterdir())[:per_class]:
            try:
                os.link(image, target / class_dir.name / image.name)
            except OSError:  # another file system
                (target / class_dir.name / image.name).write_bytes(image.read_bytes())
    return target, [c.name for c in classes]


def ragan(*args) -> list[str]:
    return [sys.executable, "-m", "ragan", *map(str, args)]


def run_size(args, size: int, work: Path) -> list[dict]:
    """Every stage at ``size`` px; one row per stage."""
    source, classes = linked_source(args.data, work / "source", args.real)
    data, run, synthetic = work / "prepared", work / "run", work / "synthetic"
    commands = {
        "prepare": ragan("prepare", source, "--out", data, "--image-size", size, "--channels", 1, "--quiet"),
        "train": ragan(
            "train",
            "stylegan2",
            "--data",
            data,
            "--out",
            run,
            "--cfg",
            "small",
            "--steps",
            args.steps,
            "--batch-size",
            4,
            "--log-every",
            args.steps,
            "--quiet",
        ),  # fmt: skip
        "generate": ragan(
            "generate", run, "--n", args.synthetic, "--out", synthetic, "--format", "tfrecord", "--quiet"
        ),
    }
    evaluations = {"evaluate --quick": ["--quick"]}
    if args.full:
        evaluations["evaluate"] = []
    for name, flags in evaluations.items():
        out = work / ("report_" + ("quick" if flags else "full"))
        if out.is_dir() and "evaluate" in args.stages:
            shutil.rmtree(out)  # the benchmark's own report of an earlier run on this --work folder
        commands[name] = ragan(
            "evaluate", "--real", data, "--synthetic", synthetic, "--out", out, "--synthetic-class", classes[0], *flags
        )
    rows = []
    for stage, command in commands.items():
        if stage.split()[0] not in args.stages:
            continue
        print(f"{size} px: {stage} ...", file=sys.stderr, flush=True)
        result = measured(command, work / f"{stage.replace(' ', '_')}.log")
        if result["returncode"] != 0:
            tail = (work / f"{stage.replace(' ', '_')}.log").read_text()[-2000:]
            raise SystemExit(f"{size} px: {stage} failed ({result['returncode']}):\n{tail}")
        count = {"prepare": args.real, "train": f"{args.steps} steps of 4", "generate": args.synthetic}.get(
            stage, f"{args.real} + {args.synthetic}"
        )
        rows.append({"size": size, "stage": stage, "images": count, **result})
        print(f"  {result['seconds']:.0f} s, {result['peak_rss_gb']:.2f} GB", file=sys.stderr, flush=True)
        if stage.startswith("evaluate"):
            report = json.loads((Path(command[command.index("--out") + 1]) / "report.json").read_text())
            rows[-1]["eval_size"] = report["resolution"]["eval_size"]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a folder of class folders of images")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--real", type=int, default=200, help="real images prepared (80/10/10 %% splits)")
    parser.add_argument("--synthetic", type=int, default=100, help="synthetic images generated")
    parser.add_argument("--steps", type=int, default=4, help="training steps (batch 4)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated: " + ",".join(STAGES))
    parser.add_argument("--full", action="store_true", help="also the full evaluation (not only --quick)")
    parser.add_argument("--work", type=Path, default=None, help="keep the files here (default: temporary)")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no data at {args.data}; pass --data", file=sys.stderr)
        return 2
    args.stages = args.stages.split(",")
    print(
        f"{platform.node()}: {len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.1f}; data {args.data}",
        file=sys.stderr,
    )
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        for size in args.sizes:
            work = (args.work or Path(temporary)) / f"{size}px"
            work.mkdir(parents=True, exist_ok=True)  # --stages evaluate: again on a kept --work folder
            rows += run_size(args, size, work)
    print(f"\n{'size':>5}  {'stage':<17} {'images':<14} {'wall s':>8} {'peak RSS GB':>12} {'bound GB':>9}  eval size")
    for row in rows:
        print(
            f"{row['size']:>5}  {row['stage']:<17} {str(row['images']):<14} {row['seconds']:>8.0f} "
            f"{row['peak_rss_gb']:>12.2f} {row['bound_rss_gb']:>9.2f}  {row.get('eval_size', '')}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
