"""Benchmark ``ragan.prepare_dataset``: throughput, and whether peak memory grows with the dataset.

Run by hand (not in CI); it takes a few minutes::

    python benchmarks/prepare.py                       # ../shared/data/brain_tumor_mri/Training
    python benchmarks/prepare.py --data DIR --sizes 64 256 --subset 300 --repeat 10

What it measures, each run in a fresh Python process:

* **Throughput**: images/s of one ``prepare_dataset`` call on the whole folder at each size
  (TensorFlow is imported before the clock starts: a fixed cost, not a per-image one).
* **Memory**: the summed peak RSS of the run's processes (the main process, the forkserver and
  every decoding worker; see :func:`run_measured`) at 1x (``--subset`` images) and 10x (the
  same files hard-linked ``--repeat`` times under other names, prepared with ``dedupe=False``). A ratio near 1 means
  memory does not grow with the dataset; the target is <= 1.2. The main process's own peak
  (``getrusage``) is shown too: TensorFlow makes up most of it.

Linux only (it reads ``/proc``).

**Against StyleGAN2-ADA's dataset_tool** (``--reference DIR``, a checkout of
NVlabs/stylegan2-ada-pytorch): the wall time of the whole ``ragan prepare`` command and of the
official ``dataset_tool.py`` on the same folder, run back to back ``--rounds`` times in this one
run, with the ratio of each round and the median. dataset_tool uses its plain resize
(``--width N --height N``; its ``--transform center-crop`` assumes RGB and fails on greyscale), so
use square images. It needs Pillow < 11: give ``--reference-python`` a Python that has it
(e.g. ``python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install 'pillow<11' numpy click requests tqdm``)::

    python benchmarks/prepare.py --reference ~/stylegan2-ada-pytorch --reference-python /tmp/dtvenv/bin/python \
        --data ../shared/data/brain_tumor_mri/Training --compare-size 256 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "brain_tumor_mri" / "Training"


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        # The command name (2nd field) may hold spaces; the fields after its ')' are fixed.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def _peak_rss_bytes(pid: int) -> tuple[int, str]:
    """The kernel's high-water mark of a process's resident memory (VmHWM), and its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, command
    except OSError:
        pass
    return 0, ""


def descendants(root: int) -> list[int]:
    children = _children_of()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def run_measured(arguments: list[str]) -> tuple[dict, int]:
    """Run this script in child mode; return its JSON result and the peak memory of its processes.

    The peak is the sum, over the run's main process and its multiprocessing helpers (forkserver,
    resource tracker, decoding workers), of each process's own peak RSS (VmHWM, kept by the
    kernel, so no spike is missed between samples); processes are found by sampling ``/proc``
    every 20 ms. It is an upper bound of the simultaneous peak. Libraries mapped by several
    processes count once per process, a constant that does not depend on the dataset. (PSS would
    split them, but on a shared machine it then moves with other programs using the same
    libraries.)
    """
    process = subprocess.Popen([sys.executable, __file__, "--child", *arguments], stdout=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for pid in descendants(process.pid):
                peak, command = _peak_rss_bytes(pid)
                if pid == process.pid or "multiprocessing" in command:
                    peaks[pid] = max(peaks.get(pid, 0), peak)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"child run failed ({process.returncode}): {' '.join(arguments)}")
    return json.loads(output.strip().splitlines()[-1]), sum(peaks.values())


def child(arguments: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("out")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep-duplicates", action="store_true")
    args = parser.parse_args(arguments)

    from ragan._tf import import_tf

    import_tf()
    from ragan.data.prepare import prepare_dataset

    start = time.perf_counter()
    manifest = prepare_dataset(
        args.input,
        args.out,
        image_size=args.size,
        num_workers=args.workers,
        dedupe=not args.keep_duplicates,
        progress=False,
    )
    seconds = time.perf_counter() - start
    images = sum(split.num_examples for split in manifest.splits.values())
    import resource

    main_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    print(json.dumps({"seconds": seconds, "images": images, "main_peak": main_peak}))


def linked_subset(source: Path, target: Path, per_class: int, copies: int) -> int:
    """Hard-link ``per_class`` images of each class ``copies`` times under different names."""
    count = 0
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.iterdir())[:per_class]:
            for copy in range(copies):
                link = target / class_dir.name / f"copy{copy:02d}_{image.name}"
                try:
                    os.link(image, link)
                except OSError:  # another file system: a copy measures the same thing
                    shutil.copyfile(image, link)
                count += 1
    return count


def _timed(command: list[str], **kwargs) -> float:
    """Wall time of a command, start to exit (interpreter start-up and imports included)."""
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return seconds


def compare_with_dataset_tool(args) -> None:
    """``ragan prepare`` against the official dataset_tool.py, back to back, ``args.rounds`` times."""
    tool = args.reference / "dataset_tool.py"
    if not tool.is_file():
        raise SystemExit(
            f"--reference {args.reference} holds no dataset_tool.py (give a stylegan2-ada-pytorch checkout)"
        )
    size = str(args.compare_size)
    workers = ["--workers", str(args.workers)] if args.workers is not None else []
    environment = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    )
    print(
        f"data: {args.data}  files: {sum(1 for p in args.data.rglob('*') if p.is_file())}  "
        f"cores: {len(os.sched_getaffinity(0))}  size: {size}"
    )
    print(
        f"ragan:        {sys.executable} -m ragan prepare DATA --out OUT --image-size {size} --quiet "
        f"{' '.join(workers)}"
    )
    print(f"dataset_tool: {args.reference_python} {tool} --source DATA --dest OUT.zip --width {size} --height {size}")
    print(f"{'round':>5} {'ragan s':>8} {'dataset_tool s':>15} {'speed-up':>9}")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="ragan-bench-") as scratch:
        scratch = Path(scratch)
        for round_index in range(args.rounds):
            ragan_out, tool_out = scratch / f"ragan{round_index}", scratch / f"tool{round_index}.zip"
            ragan_seconds = _timed(
                [
                    sys.executable,
                    "-m",
                    "ragan",
                    "prepare",
                    str(args.data),
                    "--out",
                    str(ragan_out),
                    "--image-size",
                    size,
                    "--quiet",
                    *workers,
                ],
                env=environment,
            )
            tool_seconds = _timed(
                [
                    str(args.reference_python),
                    str(tool),
                    "--source",
                    str(args.data),
                    "--dest",
                    str(tool_out),
                    "--width",
                    size,
                    "--height",
                    size,
                ],
                cwd=args.reference,
            )
            shutil.rmtree(ragan_out, ignore_errors=True)
            tool_out.unlink(missing_ok=True)
            ratios.append(tool_seconds / ragan_seconds)
            print(f"{round_index + 1:>5} {ragan_seconds:>8.1f} {tool_seconds:>15.1f} {ratios[-1]:>8.2f}x", flush=True)
    ratios.sort()
    print(
        f"\nmedian speed-up (dataset_tool time / ragan time): {ratios[len(ratios) // 2]:.2f}x "
        f"(min {ratios[0]:.2f}x, max {ratios[-1]:.2f}x; target >= 2)"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a folder of class sub-folders")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--subset", type=int, default=300, help="images in the 1x memory run")
    parser.add_argument("--repeat", type=int, default=10, help="the large run holds this many times more")
    parser.add_argument("--memory-size", type=int, default=64, help="image size of the memory runs")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="a stylegan2-ada-pytorch checkout: compare with its dataset_tool.py instead",
    )
    parser.add_argument(
        "--reference-python",
        type=Path,
        default=Path(sys.executable),
        help="the Python that runs dataset_tool.py (it needs Pillow < 11)",
    )
    parser.add_argument("--compare-size", type=int, default=256, help="output size of the comparison (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="back-to-back rounds of the comparison (default 3)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"--data {args.data} does not exist")
    if args.reference is not None:
        compare_with_dataset_tool(args)
        return

    workers = ["--workers", str(args.workers)] if args.workers is not None else []
    print(f"data: {args.data}  cores: {len(os.sched_getaffinity(0))}  workers: {args.workers or 'all cores'}")
    with tempfile.TemporaryDirectory(prefix="ragan-bench-") as scratch:
        scratch = Path(scratch)
        print("\nthroughput (whole folder)")
        print(f"{'size':>6} {'images':>7} {'seconds':>8} {'images/s':>9} {'peak RSS MiB':>13}")
        for size in args.sizes:
            result, peak = run_measured([str(args.data), str(scratch / f"out{size}"), "--size", str(size), *workers])
            print(
                f"{size:>6} {result['images']:>7} {result['seconds']:>8.1f} "
                f"{result['images'] / result['seconds']:>9.1f} {peak / 2**20:>13.0f}"
            )

        classes = sum(1 for p in args.data.iterdir() if p.is_dir())
        per_class = max(1, args.subset // classes)
        print(f"\npeak memory, {args.memory_size} px, 1x vs {args.repeat}x images (dedupe off)")
        print(f"{'run':>6} {'images':>7} {'seconds':>8} {'peak RSS MiB':>13} {'main max RSS MiB':>17}")
        peaks = {}
        for label, copies in (("1x", 1), (f"{args.repeat}x", args.repeat)):
            folder = scratch / f"input{label}"
            linked_subset(args.data, folder, per_class, copies)
            result, peak = run_measured(
                [
                    str(folder),
                    str(scratch / f"mem{label}"),
                    "--size",
                    str(args.memory_size),
                    "--keep-duplicates",
                    *workers,
                ]
            )
            peaks[label] = peak
            print(
                f"{label:>6} {result['images']:>7} {result['seconds']:>8.1f} {peak / 2**20:>13.0f} "
                f"{result['main_peak'] / 2**20:>17.0f}"
            )
        ratio = peaks[f"{args.repeat}x"] / peaks["1x"]
        print(f"\nmemory ratio {args.repeat}x / 1x: {ratio:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
