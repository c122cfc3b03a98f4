"""Training throughput of ragan's StyleGAN2 (sec/kimg) against the official PyTorch code, on CPU.

Run by hand (not in CI)::

    python benchmarks/stylegan2_throughput.py                               # 32 and 64 px, auto and small
    python benchmarks/stylegan2_throughput.py --sizes 32 --cfgs auto \\
        --reference /path/to/stylegan2-ada-pytorch --torch-python /path/to/venv/bin/python

What is measured (1 channel, unconditional, fp32, ``--threads`` TF intra/inter-op threads):

* the four phases of the official training loop, each timed on its own after a warm-up call:
  ``G main`` (G loss step), ``G reg`` (path-length regularisation, batch / 2, every 4 steps),
  ``D main`` (D loss on fakes and reals) and ``D reg`` (R1 on reals, every 16 steps). Each
  phase is one optimizer step, as in the official loop. sec/kimg is
  ``(G main + G reg / 4 + D main + D reg / 16) / batch * 1000``;
* with ``--steps N`` (a multiple of 16), also N whole ragan training steps through
  ``keras.Model.fit`` (after N warm-up steps): the real ``train_step`` with its ``tf.cond``
  lazy regularisers, EMA and bookkeeping;
* ragan is built with ``augment="none"`` (the ADA pipeline is measured elsewhere), and so is
  the official loss (``augment_pipe=None``);
* GFLOP/s: multiply-adds of G and D per image counted from the layer shapes (3x3 and 1x1
  convolutions, transposed convolutions, FIR filters, dense layers), 2 FLOPs each, and per phase
  G main = 3 G + 2 D (D is only differentiated to its input), D main = G + 2 x 3 D, G reg =
  (B/2)/B x 2 x 3 G (the double backprop counted as twice a forward-backward), D reg = 2 x 3 D;
* the machine's own limit in the same run: one 512-channel 3x3 convolution (batch 32, 16x16),
  TF and (with ``--reference``) torch.

The baseline (``--reference DIR``, a checkout of NVlabs/stylegan2-ada-pytorch) runs in a
subprocess of ``--torch-python`` (a Python with torch, numpy, scipy, click, requests, psutil and
Pillow, as the official code needs): it builds the official Generator, Discriminator and
StyleGAN2Loss with the ``--cfg auto`` / ``--fp32`` settings of its train.py and times
``loss.accumulate_gradients`` plus the Adam step for the same four phases. ``small`` has no official
counterpart: it is built with the same widths on the official side, so its ratio is comparable.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PHASES = ("G main", "G reg", "D main", "D reg")
INTERVALS = {"G main": 1, "G reg": 4, "D main": 1, "D reg": 16}


# ----------------------------------------------------------------------------------------------
# Shapes and multiply-adds (shared by both sides)
# ----------------------------------------------------------------------------------------------
def widths(res: int, cfg: str) -> dict:
    """The network widths of a preset (as ragan.models.stylegan2.model.resolve_preset)."""
    sys.path.insert(0, str(REPO))
    if cfg == "small":
        from ragan.models.stylegan2.model import _SMALL

        spec = dict(
            z_dim=_SMALL["latent_dim"],
            w_dim=_SMALL["w_dim"],
            channel_base=_SMALL["channel_base"],
            channel_max=_SMALL["channel_max"],
            batch=32,
        )
    elif cfg == "auto":
        spec = dict(
            z_dim=512,
            w_dim=512,
            channel_base=32768 if res >= 512 else 16384,
            channel_max=512,
            batch=max(min(min(4096 // res, 32), 64), 1),
        )
    else:
        raise ValueError(cfg)
    spec.update(res=res, mapping=2, mbstd=min(spec["batch"], 4), gamma=0.0002 * res**2 / spec["batch"])
    return spec


def count_macs(spec: dict, img_channels: int = 1) -> tuple[float, float]:
    """Multiply-adds of one G and one D forward pass for one image."""
    res, base, cmax, w_dim = spec["res"], spec["channel_base"], spec["channel_max"], spec["w_dim"]
    ch = lambda r: min(base // r, cmax)  # noqa: E731
    resolutions = [2**i for i in range(2, int(math.log2(res)) + 1)]
    g = 2 * spec["z_dim"] * w_dim + (spec["mapping"] - 1) * w_dim * w_dim
    for r in resolutions:
        c = ch(r)
        if r == 4:
            g += r * r * 9 * c * c + w_dim * c  # conv1 + affine
        else:
            cin = ch(r // 2)
            g += (r // 2) ** 2 * 9 * cin * c + (r + 1) ** 2 * 16 * c + w_dim * cin  # transposed conv, FIR, affine
            g += r * r * 9 * c * c + w_dim * c  # conv1
            g += (r + 1) ** 2 * 16 * img_channels  # image upsampling FIR
        g += r * r * c * img_channels + w_dim * c  # toRGB
    d = 0
    for r in reversed(resolutions[1:]):
        c, cout = ch(r), ch(r // 2)
        if r == res:
            d += r * r * img_channels * c  # fromRGB
        d += r * r * 9 * c * c  # conv0
        d += (r + 1) ** 2 * 16 * c + (r // 2) ** 2 * 9 * c * cout  # FIR + strided conv1
        d += (r // 2) ** 2 * 16 * c + (r // 2) ** 2 * c * cout  # skip: FIR + 1x1
    c4 = ch(4)
    d += 16 * 9 * (c4 + 1) * c4 + 16 * c4 * c4 + c4
    return float(g), float(d)


def phase_flops(spec: dict) -> dict:
    g, d = count_macs(spec)
    per_image = {"G main": 3 * g + 2 * d, "G reg": 0.5 * 2 * 3 * g, "D main": g + 2 * 3 * d, "D reg": 2 * 3 * d}
    return {phase: 2 * macs * spec["batch"] for phase, macs in per_image.items()}


def sec_per_kimg(times: dict, batch: int) -> float:
    return sum(times[p] / INTERVALS[p] for p in PHASES) / batch * 1000


# ----------------------------------------------------------------------------------------------
# ragan (TensorFlow)
# ----------------------------------------------------------------------------------------------
def setup_tf(threads: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO))
    from ragan._tf import import_tf

    tf = import_tf()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def tf_conv_gflops(tf, repeats: int) -> float:
    x = tf.random.normal([32, 16, 16, 512])
    w = tf.random.normal([3, 3, 512, 512])
    conv = tf.function(lambda: tf.nn.conv2d(x, w, 1, "SAME"))
    conv().numpy()
    best = min(_timed(lambda: conv().numpy()) for _ in range(repeats))
    return 2 * 32 * 16 * 16 * 9 * 512 * 512 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def build_ragan(tf, spec: dict, cfg: str, overrides: dict):
    import numpy as np

    from ragan.models import StyleGAN2

    gan = StyleGAN2({"cfg": cfg, "augment": "none", **overrides}, image_size=spec["res"], channels=1, seed=0)
    gan.compile()
    gan.g_optimizer.build(gan.generator.trainable_variables)
    gan.d_optimizer.build(gan.discriminator.trainable_variables)
    real = tf.constant(
        np.random.default_rng(0).uniform(-1, 1, (spec["batch"], spec["res"], spec["res"], 1)), tf.float32
    )
    return gan, real


def time_ragan_phases(tf, gan, real, repeats: int, jit: bool = False) -> dict:
    batch = tf.shape(real)[0]

    def g_main():
        return gan._g_main(batch, None)

    def g_reg():
        return gan._g_path_length(batch, None)

    def d_main():
        return gan._d_main(real, None)[0]

    def d_reg():
        return gan._d_r1(real, None)

    functions = {"G main": g_main, "G reg": g_reg, "D main": d_main, "D reg": d_reg}
    times = {}
    for phase, fn in functions.items():
        # No autograph: the phases hold no Python control flow on tensors (and autograph mixed
        # up these small functions).
        compiled = tf.function(fn, jit_compile=jit, autograph=False)
        compiled()  # trace + warm-up
        times[phase] = min(_timed(lambda: compiled().numpy()) for _ in range(repeats))
    return times


def time_ragan_steps(tf, gan, real, steps: int) -> float:
    """Seconds per whole training step (fit), over ``steps`` steps after ``steps`` warm-up steps."""
    data = tf.data.Dataset.from_tensors(real).repeat()
    gan.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    start = time.perf_counter()
    gan.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


# ----------------------------------------------------------------------------------------------
# Official code (PyTorch, run in a subprocess of --torch-python)
# ----------------------------------------------------------------------------------------------
def official_worker(args) -> None:
    """Runs under the torch Python: builds the official networks and loss, prints JSON."""
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(args.reference).resolve()))
    import dnnlib  # noqa: F401  (the official package)
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device("cpu")
    out = {}
    x = torch.randn(32, 512, 16, 16)
    w = torch.randn(512, 512, 3, 3)
    with torch.no_grad():
        torch.nn.functional.conv2d(x, w, padding=1)
        best = min(_timed(lambda: torch.nn.functional.conv2d(x, w, padding=1)) for _ in range(args.conv_repeats))
    out["conv_gflops"] = 2 * 32 * 16 * 16 * 9 * 512 * 512 / best / 1e9
    for key, spec in json.loads(args.specs).items():
        res = spec["res"]
        common = dict(c_dim=0, img_resolution=res, img_channels=1)
        G = (
            Generator(
                z_dim=spec["z_dim"],
                w_dim=spec["w_dim"],
                mapping_kwargs=dict(num_layers=spec["mapping"]),
                synthesis_kwargs=dict(
                    channel_base=spec["channel_base"], channel_max=spec["channel_max"], num_fp16_res=0, conv_clamp=None
                ),
                **common,
            )
            .train()
            .to(device)
        )
        D = (
            Discriminator(
                channel_base=spec["channel_base"],
                channel_max=spec["channel_max"],
                num_fp16_res=0,
                conv_clamp=None,
                epilogue_kwargs=dict(mbstd_group_size=spec["mbstd"]),
                **common,
            )
            .train()
            .to(device)
        )
        loss = StyleGAN2Loss(device, G.mapping, G.synthesis, D, augment_pipe=None, r1_gamma=spec["gamma"])
        lr = 0.0025
        phases = {}
        for name, module, interval in (("G", G, 4), ("D", D, 16)):
            ratio = interval / (interval + 1)
            opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
            phases[f"{name} main"] = (f"{name}main", module, opt, 1)
            phases[f"{name} reg"] = (f"{name}reg", module, opt, interval)
        for m in (G, D):
            m.requires_grad_(False)
        batch = spec["batch"]
        real = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (batch, 1, res, res)).astype(np.float32))
        c = torch.zeros([batch, 0])

        def run(phase):
            official_name, module, opt, gain = phases[phase]
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            z = torch.randn([batch, G.z_dim])
            loss.accumulate_gradients(
                phase=official_name, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True, gain=gain
            )
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()

        times = {}
        for phase in PHASES:
            run(phase)
            times[phase] = min(_timed(lambda: run(phase)) for _ in range(args.repeats))
        out[key] = times
    print("JSON" + json.dumps(out))


def run_official(args) -> dict:
    command = [
        args.torch_python,
        str(Path(__file__).resolve()),
        "--official-worker",
        "--reference",
        args.reference,
        "--threads",
        str(args.threads),
        "--repeats",
        str(args.repeats),
        "--conv-repeats",
        str(args.conv_repeats),
        "--specs",
        json.dumps({f"{res}/{cfg}": widths(res, cfg) for res in args.sizes for cfg in args.cfgs}),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("JSON")]
    if done.returncode or not lines:
        sys.exit(f"the official code failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][4:])


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--cfgs", nargs="+", default=["auto", "small"], choices=["auto", "small"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per phase (the best counts)")
    parser.add_argument("--conv-repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=0, help="also time this many whole fit steps (multiple of 16)")
    parser.add_argument("--steps-cfgs", nargs="+", default=["small"], help="presets timed with --steps")
    parser.add_argument("--xla", action="store_true", help="also time the phases with jit_compile=True")
    parser.add_argument("--reference", help="checkout of NVlabs/stylegan2-ada-pytorch (the baseline)")
    parser.add_argument("--torch-python", default=sys.executable, help="Python with torch for the baseline")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--official-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--specs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.official_worker:
        official_worker(args)
        return
    if args.steps % 16:
        parser.error("--steps must be a multiple of 16 (one R1 period)")

    tf = setup_tf(args.threads)
    official = run_official(args) if args.reference else {}
    if official:
        print("official:", json.dumps(official), flush=True)
    load = os.getloadavg()[0]
    results = {
        "threads": args.threads,
        "load": load,
        "tf_conv_gflops": tf_conv_gflops(tf, args.conv_repeats),
        "torch_conv_gflops": official.get("conv_gflops"),
        "rows": [],
    }
    for res in args.sizes:
        for cfg in args.cfgs:
            spec = widths(res, cfg)
            gan, real = build_ragan(tf, spec, cfg, {})
            variants = {"ragan": time_ragan_phases(tf, gan, real, args.repeats)}
            if args.xla:
                variants["ragan xla"] = time_ragan_phases(tf, gan, real, args.repeats, jit=True)
            if f"{res}/{cfg}" in official:
                variants["official"] = official[f"{res}/{cfg}"]
            step = time_ragan_steps(tf, gan, real, args.steps) if args.steps and cfg in args.steps_cfgs else None
            flops = phase_flops(spec)
            for name, times in variants.items():
                results["rows"].append(
                    {
                        "res": res,
                        "cfg": cfg,
                        "impl": name,
                        "batch": spec["batch"],
                        "times": times,
                        "sec_per_kimg": sec_per_kimg(times, spec["batch"]),
                        "gflops": {p: flops[p] / times[p] / 1e9 for p in PHASES},
                        "fit_sec_per_kimg": step / spec["batch"] * 1000 if step and name == "ragan" else None,
                    }
                )
            del gan
    results["load_after"] = os.getloadavg()[0]
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def print_table(results: dict) -> None:
    conv = f"TF {results['tf_conv_gflops']:.0f}"
    if results.get("torch_conv_gflops"):
        conv += f", torch {results['torch_conv_gflops']:.0f}"
    print(
        f"\n{results['threads']} threads, load average {results['load']:.1f} -> {results['load_after']:.1f}; "
        f"one 512-ch 3x3 conv: {conv} GFLOP/s"
    )
    header = f"{'res':>4} {'cfg':<6} {'impl':<10} " + " ".join(f"{p + ' s':>9}" for p in PHASES)
    header += f" {'s/kimg':>8} {'fit s/kimg':>10}  GFLOP/s (G main, G reg, D main, D reg)"
    print(header)
    for row in results["rows"]:
        fit = f"{row['fit_sec_per_kimg']:.1f}" if row["fit_sec_per_kimg"] else "-"
        print(
            f"{row['res']:>4} {row['cfg']:<6} {row['impl']:<10} "
            + " ".join(f"{row['times'][p]:>9.3f}" for p in PHASES)
            + f" {row['sec_per_kimg']:>8.1f} {fit:>10}  "
            + ", ".join(f"{row['gflops'][p]:.0f}" for p in PHASES)
        )
    by_key = {(r["res"], r["cfg"], r["impl"]): r for r in results["rows"]}
    for (res, cfg, impl), row in by_key.items():
        reference = by_key.get((res, cfg, "official"))
        if impl != "official" and reference:
            print(
                f"{res} px {cfg}: {impl} is {reference['sec_per_kimg'] / row['sec_per_kimg']:.2f}x the official speed"
            )


if __name__ == "__main__":
    main()
