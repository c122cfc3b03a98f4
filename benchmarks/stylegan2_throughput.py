"""Training throughput of ragan's StyleGAN2 (sec/kimg) against the official PyTorch code, on CPU.

Run by hand (not in CI)::

    python benchmarks/stylegan2_throughput.py --reference /path/to/stylegan2-ada-pytorch \\
        --torch-python /path/to/torch-venv/bin/python            # 32 px, small and auto
    python benchmarks/stylegan2_throughput.py --cfgs small --ada --profile --reference ...
    python benchmarks/stylegan2_throughput.py --cfgs small --roofline --reference ...

Each implementation runs in a process of its own (``--rounds`` alternates them, so that both see
the same load), 1 channel, unconditional, fp32, ``--threads`` threads, the same in-memory batch of
real images at every step, no augmentation (ragan ``--augment none``, the official loss with
``augment_pipe=None``), and the official schedule: per step ``G main``, ``G reg`` (path length,
every 4 steps), ``D main``, ``D reg`` (R1, every 16 steps), then the generator EMA. It measures:

* **start-up**: seconds from building the networks to the end of the first tick (``--tick-steps``
  steps: the whole training step, ragan through ``keras.Model.fit``; tracing and graph
  optimisation included), and that tick's sec/kimg. A ragan tick is one ``fit`` epoch, timed to
  the epoch's end: ``ragan train`` runs all its ticks in one ``fit``, so what ``fit`` spends after
  its last epoch (releasing the input iterator: 0-35 s, seen at random) is paid once a run, and
  is printed apart;
* **steady state**, two ways: the per-tick sec/kimg of ``--ticks`` further ticks (mean; spread),
  and from **whole phases**, each called ``--calls`` times after it is compiled: ``(G main + G reg
  / 4 + D main + D reg / 16) / batch * 1000``; the phase times are printed (and with
  ``--profile`` the ten most expensive ops of each: TensorFlow's profiler for ragan, torch's for
  the official code, self time summed per op type over the calls);
* with ``--roofline``, ragan's **arithmetic floor**: the floating-point work of each phase (the
  convolutions, their gradients and the matrix products its compiled graph runs, counted from
  their shapes) and the time those kernels take when each is run alone, summed. A phase cannot
  beat that floor without faster kernels or less arithmetic (except by the few percent that
  independent kernels running at once can save); with the official code measured
  beside it, the floor bounds the ratio that any change to the rest of ragan's step could reach;
* with ``--ada``, ragan ``--augment ada`` at p = 0 (target 1, so p stays 0) against ``--augment
  none``: ticks of the two models alternate in one process.

``small`` has no official counterpart: the official networks are built with its widths (z = w =
128, channel_base 2048, channel_max 128), so the ratio compares like with like. The official side
uses its ``--fp32`` settings (no conv clamp); ragan runs its defaults (clamp 256). The machine's own
limit is printed too: one 512-channel 3x3 convolution (batch 32, 16x16), in GFLOP/s.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PHASES = ("G main", "G reg", "D main", "D reg")
INTERVALS = {"G main": 1, "G reg": 4, "D main": 1, "D reg": 16}


def widths(res: int, cfg: str) -> dict:
    """The networks of a preset at ``res`` (as ragan.models.stylegan2.config.resolve_preset)."""
    sys.path.insert(0, str(REPO))
    if cfg == "small":
        spec = dict(z_dim=128, w_dim=128, channel_base=2048, channel_max=128, batch=32)
    elif cfg == "auto":
        spec = dict(
            z_dim=512,
            w_dim=512,
            channel_base=32768 if res >= 512 else 16384,
            channel_max=512,
            batch=max(min(4096 // res, 32), 1),
        )
    else:
        raise ValueError(cfg)
    spec.update(res=res, mapping=2, mbstd=min(spec["batch"], 4), gamma=0.0002 * res**2 / spec["batch"])
    return spec


def sec_per_kimg(times: dict, batch: int) -> float:
    return sum(times[p] / INTERVALS[p] for p in PHASES) / batch * 1000


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _top_ops(totals: dict, calls: int, limit: int = 10) -> list:
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:limit]
    return [(name, seconds / calls) for name, seconds in ranked]


# ----------------------------------------------------------------------------------------------
# ragan (TensorFlow)
# ----------------------------------------------------------------------------------------------
def ragan_worker(args, checkout: Path = REPO) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(checkout))
    start = time.perf_counter()
    import numpy as np

    from ragan._tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from ragan.models import StyleGAN2

    out = {"import_s": time.perf_counter() - start}
    x = tf.random.normal([32, 16, 16, 512])
    w = tf.random.normal([3, 3, 512, 512])
    conv = tf.function(lambda: tf.nn.conv2d(x, w, 1, "SAME"))
    conv().numpy()
    out["conv_gflops"] = 2 * 32 * 16 * 16 * 9 * 512 * 512 / min(_timed(lambda: conv().numpy()) for _ in range(5)) / 1e9

    for cfg in args.cfgs:
        spec = widths(args.size, cfg)
        batch = spec["batch"]
        real = np.random.default_rng(0).uniform(-1, 1, (batch, args.size, args.size, 1)).astype(np.float32)
        data = tf.data.Dataset.from_tensors(real).repeat()
        kimg_per_tick = args.tick_steps * batch / 1000

        def build(**overrides):
            gan = StyleGAN2({"cfg": cfg, "augment": "none", **overrides}, image_size=args.size, channels=1, seed=0)
            gan.compile()
            return gan

        fit_return = []

        def tick(gan):
            """One tick: a ``fit`` call of one epoch, timed to its epoch's end (as ``ragan train``'s
            ticks are, all in one ``fit``); what ``fit`` spends after it (releasing the input
            iterator, once per run in ``ragan train``) is kept apart in ``fit_return_s``."""
            ends = []
            marker = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
            start = time.perf_counter()
            gan.fit(data, steps_per_epoch=args.tick_steps, epochs=1, verbose=0, callbacks=[marker])
            fit_return.append(time.perf_counter() - ends[-1])
            return ends[-1] - start

        row = {}
        build_s = _timed(lambda: row.setdefault("gan", build()))
        gan = row.pop("gan")
        result = {"batch": batch, "build_s": build_s}
        if cfg in args.fit_cfgs:
            first = tick(gan)
            result.update(first_tick_s=first, first_tick_s_per_kimg=first / kimg_per_tick, startup_s=build_s + first)
            variants = {"none": gan}
            if args.ada:
                ada = build(augment="ada", augment_p=0.0, ada_target=1.0)
                result["ada_first_tick_s"] = tick(ada)
                variants["ada p=0"] = ada
            ticks = {name: [] for name in variants}
            for _ in range(args.ticks):
                for name, model in variants.items():
                    ticks[name].append(tick(model) / kimg_per_tick)
            result["tick_s_per_kimg"] = ticks["none"]
            if args.ada:
                result["ada_tick_s_per_kimg"] = ticks["ada p=0"]
                result["ada_p_after"] = float(variants["ada p=0"].augment_probability.numpy())
            result["fit_return_s"] = fit_return
        if not hasattr(gan, "phase_function"):  # a --baseline checkout from before the phase split
            out[cfg] = result
            continue
        # Whole phases, each compiled (traced on its first call, timed apart) then called --calls times.
        inputs = tf.constant(real)
        phases = {phase.name: phase for phase in gan.phases}
        times, tracing, profiles, roofline = {}, {}, {}, {}
        for name in PHASES:
            function = gan.phase_function(phases[name], False)
            tracing[name] = _timed(lambda: function(inputs))
            calls = [_timed(lambda: _fetch(tf, function(inputs))) for _ in range(args.calls)]
            times[name] = statistics.mean(calls)
            if args.profile:
                profiles[name] = _tf_profile(tf, lambda: function(inputs), args.calls)
            if args.roofline:
                roofline[name] = kernel_floor(tf, function.get_concrete_function(inputs).graph, args.calls)
        result.update(
            phase_s=times,
            phase_first_call_s=tracing,
            phase_s_per_kimg=sec_per_kimg(times, batch),
            profile=profiles,
        )
        if args.roofline:
            result["roofline"] = roofline
        out[cfg] = result
        del gan
    return out


def _fetch(tf, outputs):
    """Wait for a phase's outputs (the generator phases return none)."""
    return None if outputs is None else tf.nest.map_structure(lambda tensor: tensor.numpy(), outputs)


def _tf_profile(tf, call, calls: int) -> list:
    """Self time per op type over ``calls`` calls, from TensorFlow's profiler trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(calls):
            _fetch(tf, call())
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if line.name == "python":
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:  # "op name:OpType": one kernel (not an executor span)
                    totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e12
    return _top_ops(totals, calls)


# The arithmetic floor of a phase (--roofline)
# ----------------------------------------------------------------------------------------------
#: The kernels that do a phase's arithmetic (convolutions, their gradients, matrix products).
ARITHMETIC_OPS = (
    "Conv2D",
    "Conv2DBackpropInput",
    "Conv2DBackpropFilter",
    "DepthwiseConv2dNative",
    "DepthwiseConv2dNativeBackpropInput",
    "DepthwiseConv2dNativeBackpropFilter",
    "MatMul",
)


def live_ops(graph) -> list:
    """The ops of a traced function that run: those its outputs, its control outputs or a stateful
    op (an optimizer update, a variable assignment) depend on. The function runtime prunes the
    rest, e.g. the weight gradients of the network a phase does not train, which the tape builds
    because a convolution's gradient function makes both of its gradients."""
    roots = [tensor.op for tensor in graph.outputs] + list(graph.control_outputs)
    roots += [op for op in graph.get_operations() if op.op_def.is_stateful]
    live, stack = set(), roots
    while stack:
        op = stack.pop()
        if op not in live:
            live.add(op)
            stack.extend(tensor.op for tensor in op.inputs)
            stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op in live]


def _dims(tensor) -> list:
    dims = tensor.shape.as_list()
    if None in dims:
        raise ValueError(f"{tensor.name} has an unknown dimension")
    return dims


def op_flops(op) -> int:
    """Floating-point operations (2 per multiply-add) of one arithmetic op, from its static shapes."""
    kind = op.type
    if kind == "MatMul":
        a, b = _dims(op.inputs[0]), _dims(op.inputs[1])
        m, k = (a[1], a[0]) if op.get_attr("transpose_a") else (a[0], a[1])
        n = b[0] if op.get_attr("transpose_b") else b[1]
        return 2 * m * n * k
    # Every convolution op costs what its forward convolution costs: output pixels x taps x the
    # channels each tap multiplies. The forward output is this op's output (Conv2D), its
    # out_backprop input (the input gradients) or its out_backprop (the filter gradient).
    out = _dims(op.outputs[0]) if kind in ("Conv2D", "DepthwiseConv2dNative") else _dims(op.inputs[2])
    kernel = _dims(op.outputs[0]) if kind.endswith("BackpropFilter") else _dims(op.inputs[1])
    if kind.startswith("Depthwise"):
        kh, kw, channels, multiplier = kernel
        return 2 * out[0] * out[1] * out[2] * kh * kw * channels * multiplier
    kh, kw, in_channels, _ = kernel
    return 2 * out[0] * out[1] * out[2] * out[3] * kh * kw * in_channels


def _replay(tf, op):
    """``op`` alone, compiled, on random inputs of its shapes and with its attributes."""
    kwargs = {}
    for arg, tensor in zip(op.op_def.input_arg, op.inputs):
        if tensor.dtype == tf.int32:  # input_sizes / filter_sizes: the shape of the op's output
            kwargs[arg.name] = tf.constant(_dims(op.outputs[0]), tf.int32)
        else:
            kwargs[arg.name] = tf.random.normal(_dims(tensor), dtype=tensor.dtype)
    for name in op.node_def.attr:
        if name != "T" and not name.startswith("_"):  # "_...": the graph's own bookkeeping
            value = op.get_attr(name)
            kwargs[name] = value.decode() if isinstance(value, bytes) else value
    kernel = getattr(tf.raw_ops, op.type)
    return tf.function(lambda: kernel(**kwargs), autograph=False)


def kernel_floor(tf, graph, calls: int) -> dict:
    """A phase's arithmetic and the time its kernels take alone.

    Each live convolution and matrix product of the phase's graph is run by itself (the same op,
    shapes and attributes; each distinct one compiled once, best of ``calls`` + 2 calls less the
    cost of calling an empty compiled function, times the number of times the phase runs it).
    Their sum is a floor for the phase on this machine with these kernels: it leaves out
    everything else the phase runs (activations, modulation, the optimizer, the graph executor),
    and fusing a bias or an activation into a convolution, as oneDNN does, only adds to a
    kernel's own time. A phase can come in a little under it where the executor runs independent
    kernels at once (measured: D main at 0.95x its floor), so read it as a floor to within that.
    """
    count, example = collections.Counter(), {}
    flops = collections.Counter()
    for op in live_ops(graph):
        if op.type in ARITHMETIC_OPS:
            key = (op.type, tuple(tuple(t.shape.as_list()) for t in op.inputs), str(sorted(op.node_def.attr.items())))
            count[key] += 1
            example.setdefault(key, op)
            flops[op.type] += op_flops(op)
    # What a call of a compiled function costs with nothing in it, taken off each kernel's time.
    empty = tf.function(lambda: tf.constant(0.0), autograph=False)
    empty().numpy()
    overhead = min(_timed(lambda: empty().numpy()) for _ in range(20))
    seconds = collections.Counter()
    for key, times in count.items():
        replay = _replay(tf, example[key])
        replay().numpy()
        best = min(_timed(lambda: replay().numpy()) for _ in range(calls + 2))
        seconds[key[0]] += max(best - overhead, 0.0) * times
    return {
        "gflop": sum(flops.values()) / 1e9,
        "gflop_by_op": {kind: value / 1e9 for kind, value in flops.most_common()},
        "floor_s": sum(seconds.values()),
        "floor_s_by_op": dict(seconds.most_common()),
        "ops": sum(count.values()),
        "call_overhead_s": overhead,
    }


# ----------------------------------------------------------------------------------------------
# Official code (PyTorch, run under --torch-python)
# ----------------------------------------------------------------------------------------------
def official_worker(args) -> dict:
    start = time.perf_counter()
    import numpy as np
    import torch

    sys.path.insert(0, str(Path(args.reference).resolve()))
    from training.loss import StyleGAN2Loss
    from training.networks import Discriminator, Generator

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(0)
    out = {"import_s": time.perf_counter() - start}
    x = torch.randn(32, 512, 16, 16)
    w = torch.randn(512, 512, 3, 3)
    with torch.no_grad():
        torch.nn.functional.conv2d(x, w, padding=1)
        best = min(_timed(lambda: torch.nn.functional.conv2d(x, w, padding=1)) for _ in range(5))
    out["conv_gflops"] = 2 * 32 * 16 * 16 * 9 * 512 * 512 / best / 1e9
    device = torch.device("cpu")
    for cfg in args.cfgs:
        spec = widths(args.size, cfg)
        res, batch = spec["res"], spec["batch"]
        kimg_per_tick = args.tick_steps * batch / 1000

        def build():
            common = dict(c_dim=0, img_resolution=res, img_channels=1)
            G = Generator(
                z_dim=spec["z_dim"],
                w_dim=spec["w_dim"],
                mapping_kwargs=dict(num_layers=spec["mapping"]),
                synthesis_kwargs=dict(
                    channel_base=spec["channel_base"], channel_max=spec["channel_max"], num_fp16_res=0, conv_clamp=None
                ),
                **common,
            ).train()
            D = Discriminator(
                channel_base=spec["channel_base"],
                channel_max=spec["channel_max"],
                num_fp16_res=0,
                conv_clamp=None,
                epilogue_kwargs=dict(mbstd_group_size=spec["mbstd"]),
                **common,
            ).train()
            G_ema = Generator(**G.init_kwargs).eval()
            G_ema.load_state_dict(G.state_dict())
            loss = StyleGAN2Loss(device, G.mapping, G.synthesis, D, augment_pipe=None, r1_gamma=spec["gamma"])
            phases = {}
            for name, module, interval in (("G", G, 4), ("D", D, 16)):
                ratio = interval / (interval + 1)
                opt = torch.optim.Adam(module.parameters(), lr=0.0025 * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)
                phases[f"{name} main"] = (f"{name}main", module, opt, 1)
                phases[f"{name} reg"] = (f"{name}reg", module, opt, interval)
            for module in (G, D, G_ema):
                module.requires_grad_(False)
            return G, G_ema, loss, phases

        t0 = time.perf_counter()
        G, G_ema, loss, phases = build()
        real = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (batch, 1, res, res)).astype(np.float32))
        c = torch.zeros([batch, 0])
        build_s = time.perf_counter() - t0
        state = {"step": 0, "nimg": 0}

        def run(phase):  # one phase as in training_loop.py
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

        def tick():
            begin = time.perf_counter()
            for _ in range(args.tick_steps):
                for phase in PHASES:
                    if state["step"] % INTERVALS[phase] == 0:
                        run(phase)
                with torch.no_grad():  # G_ema, ema_kimg = batch * 10 / 32, ramp-up 0.05
                    ema_nimg = min(batch * 10 / 32 * 1000, state["nimg"] * 0.05)
                    beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
                    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
                        p_ema.copy_(p.lerp(p_ema, beta))
                    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
                        b_ema.copy_(b)
                state["step"] += 1
                state["nimg"] += batch
            return time.perf_counter() - begin

        result = {"batch": batch, "build_s": build_s}
        if cfg in args.fit_cfgs:
            first = tick()
            result.update(first_tick_s=first, first_tick_s_per_kimg=first / kimg_per_tick, startup_s=build_s + first)
            result["tick_s_per_kimg"] = [tick() / kimg_per_tick for _ in range(args.ticks)]
        times, first_call, profiles = {}, {}, {}
        for phase in PHASES:
            first_call[phase] = _timed(lambda: run(phase))
            times[phase] = statistics.mean(_timed(lambda: run(phase)) for _ in range(args.calls))
            if args.profile:
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
                    for _ in range(args.calls):
                        run(phase)
                totals = {e.key: e.self_cpu_time_total / 1e6 for e in profiler.key_averages()}
                profiles[phase] = _top_ops(totals, args.calls)
        result.update(
            phase_s=times,
            phase_first_call_s=first_call,
            phase_s_per_kimg=sec_per_kimg(times, batch),
            profile=profiles,
        )
        out[cfg] = result
    return out


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------
def run_worker(args, impl: str) -> dict:
    python = args.torch_python if impl == "official" else sys.executable
    command = [python, str(Path(__file__).resolve()), "--worker", impl, "--json-args", json.dumps(vars(args))]
    env = dict(os.environ)
    if impl == "baseline":  # the baseline checkout's ragan, not this one's
        env["PYTHONPATH"] = str(Path(args.baseline).resolve())
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("JSON")]
    if done.returncode or not lines:
        sys.exit(f"the {impl} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][4:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--cfgs", nargs="+", default=["small", "auto"], choices=["small", "auto"])
    parser.add_argument("--fit-cfgs", nargs="+", default=["small"], help="presets timed in ticks (start-up, steady)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tick-steps", type=int, default=25, help="steps per tick (25: ragan's default log_every)")
    parser.add_argument("--ticks", type=int, default=3, help="steady-state ticks after the first")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per phase")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two implementations this many times")
    parser.add_argument("--ada", action="store_true", help="also time ragan --augment ada at p = 0")
    parser.add_argument("--profile", action="store_true", help="the ten most expensive ops of each phase")
    parser.add_argument(
        "--roofline",
        action="store_true",
        help="ragan's arithmetic per phase and the time its convolutions and matrix products take alone",
    )
    parser.add_argument("--reference", help="checkout of NVlabs/stylegan2-ada-pytorch (the baseline)")
    parser.add_argument("--torch-python", default=sys.executable, help="Python with torch for the baseline")
    parser.add_argument("--baseline", help="another ragan checkout to time beside this one (before/after a change)")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--worker", choices=["ragan", "baseline", "official"], help=argparse.SUPPRESS)
    parser.add_argument("--json-args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_args = argparse.Namespace(**json.loads(args.json_args))
        if args.worker == "official":
            result = official_worker(worker_args)
        else:
            result = ragan_worker(worker_args, Path(worker_args.baseline) if args.worker == "baseline" else REPO)
        print("JSON" + json.dumps(result))
        return

    impls = ["ragan"] + (["baseline"] if args.baseline else []) + (["official"] if args.reference else [])
    rounds = []
    for index in range(args.rounds):
        measured = {"load_before": os.getloadavg()[0]}
        for impl in impls if index % 2 == 0 else impls[::-1]:
            measured[impl] = run_worker(args, impl)
            print(f"round {index + 1}, {impl}: done (load {os.getloadavg()[0]:.1f})", flush=True)
        measured["load_after"] = os.getloadavg()[0]
        rounds.append(measured)
    for measured in rounds:
        print_round(args, measured)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=2))


def print_round(args, measured: dict) -> None:
    impls = [impl for impl in ("ragan", "baseline", "official") if impl in measured]
    print(
        f"\n{args.size} px, 1 channel, fp32, {args.threads} threads; load average {measured['load_before']:.1f} -> "
        f"{measured['load_after']:.1f}; one 512-ch 3x3 conv: "
        + ", ".join(f"{impl} {measured[impl]['conv_gflops']:.0f} GFLOP/s" for impl in impls)
    )
    for cfg in args.cfgs:
        rows = {impl: measured[impl][cfg] for impl in impls}
        print(f"\n[{cfg}] batch {rows['ragan']['batch']}")
        print(f"{'impl':<14}" + "".join(f"{p + ' s':>9}" for p in PHASES) + f"{'phases s/kimg':>15}{'trace s':>9}")
        for impl, row in rows.items():
            if "phase_s" not in row:
                continue
            tracing = sum(row["phase_first_call_s"][p] - row["phase_s"][p] for p in PHASES)
            print(
                f"{impl:<14}"
                + "".join(f"{row['phase_s'][p]:>9.3f}" for p in PHASES)
                + f"{row['phase_s_per_kimg']:>15.1f}{tracing:>9.1f}"
            )
        if "official" in rows:
            ratio = rows["official"]["phase_s_per_kimg"] / rows["ragan"]["phase_s_per_kimg"]
            print(f"whole phases: ragan is {ratio:.2f}x the official speed")
        if cfg in args.fit_cfgs:
            print(
                f"{'impl':<14}{'build s':>9}{'1st tick s':>11}{'startup s':>10}{'1st s/kimg':>11}{'steady s/kimg':>22}"
            )
            for impl, row in rows.items():
                ticks = row["tick_s_per_kimg"]
                steady = f"{statistics.mean(ticks):.1f} ({min(ticks):.1f}-{max(ticks):.1f})"
                print(
                    f"{impl:<14}{row['build_s']:>9.1f}{row['first_tick_s']:>11.1f}{row['startup_s']:>10.1f}"
                    f"{row['first_tick_s_per_kimg']:>11.1f}{steady:>22}   first/steady "
                    f"{row['first_tick_s_per_kimg'] / statistics.mean(ticks):.2f}"
                )
            for impl, row in rows.items():
                if row.get("fit_return_s"):
                    spent = row["fit_return_s"]
                    print(
                        f"{impl}: after each fit's last epoch (input iterator released; once per ragan train run, "
                        f"not in its ticks): {statistics.mean(spent):.1f} s on average, at most {max(spent):.1f} s"
                    )
            steady = {impl: statistics.mean(row["tick_s_per_kimg"]) for impl, row in rows.items()}
            for other in ("baseline", "official"):
                if other in rows:
                    print(f"ticks: ragan is {steady[other] / steady['ragan']:.2f}x the {other} speed in steady state")
            for impl, row in rows.items():
                if "ada_tick_s_per_kimg" not in row:
                    continue
                ada, none = row["ada_tick_s_per_kimg"], row["tick_s_per_kimg"]
                pairs = [a / n for a, n in zip(ada, none)]
                print(
                    f"{impl} --augment ada at p = 0 (p after: {row['ada_p_after']:g}): "
                    f"{statistics.mean(ada):.1f} s/kimg, {statistics.mean(pairs):.3f}x --augment none "
                    f"(tick pairs {', '.join(f'{p:.3f}' for p in pairs)}); its first tick "
                    f"{row['ada_first_tick_s']:.1f} s"
                )
        if "roofline" in rows["ragan"]:
            print_roofline(rows)
        for impl, row in rows.items():
            for phase, ops in row.get("profile", {}).items():
                print(f"  {impl} {phase}: top ops, ms per call")
                for name, seconds in ops:
                    print(f"    {1000 * seconds:9.1f}  {name}")


def print_roofline(rows: dict) -> None:
    """ragan's phases against the time their arithmetic kernels take alone, and what that floor
    allows against the official code."""
    ragan = rows["ragan"]
    floors = {phase: ragan["roofline"][phase]["floor_s"] for phase in PHASES}
    print("ragan's arithmetic (live convolutions and matrix products) and its floor (each run alone, summed):")
    print(f"{'phase':<8}{'ops':>5}{'GFLOP':>8}{'measured s':>12}{'GFLOP/s':>9}{'floor s':>9}{'measured/floor':>16}")
    for phase in PHASES:
        line = ragan["roofline"][phase]
        gflop, measured = line["gflop"], ragan["phase_s"][phase]
        ratio = measured / floors[phase]
        print(
            f"{phase:<8}{line['ops']:>5}{gflop:>8.2f}{measured:>12.3f}{gflop / measured:>9.0f}"
            f"{floors[phase]:>9.3f}{ratio:>16.2f}"
        )
    floor = sec_per_kimg(floors, ragan["batch"])
    print(f"phases at the floor: {floor:.1f} s/kimg (measured {ragan['phase_s_per_kimg']:.1f})")
    for kind in ("G main", "D main"):
        shares = ragan["roofline"][kind]["floor_s_by_op"]
        print(f"  {kind} floor by op: " + ", ".join(f"{op} {1000 * value:.0f} ms" for op, value in shares.items()))
    if "official" in rows:
        official = rows["official"]["phase_s_per_kimg"]
        print(
            f"the official phases take {official:.1f} s/kimg: with these kernels and nothing else, ragan's phases "
            f"could reach at most {official / floor:.2f}x the official speed"
        )
        if "tick_s_per_kimg" in rows["official"]:
            ticks = statistics.mean(rows["official"]["tick_s_per_kimg"])
            print(f"  (against the official steady ticks, {ticks:.1f} s/kimg: at most {ticks / floor:.2f}x)")


if __name__ == "__main__":
    main()
