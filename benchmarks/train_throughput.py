"""Training and generation throughput of ragan's DCGAN versus a plain PyTorch DCGAN, on one machine.

Run by hand (not in CI)::

    pip install torch==2.13.0          # CPU wheel; only needed for the comparison
    python benchmarks/train_throughput.py                      # 64x64x1, batch 64, all cores
    python benchmarks/train_throughput.py --threads 2 --steps 30 --variants fit,fit_spe4,fit_xla

What is measured (same architecture, loss, optimizer and thread count on both sides):

* DCGAN at 64x64x1 (ngf = ndf = 64, BatchNorm in G and in D after its first conv), batch 64,
  Adam(2e-4, beta_1=0.5), non-saturating BCE loss, one D update then one G update per step,
  no EMA (``ema_decay=0``: the plain PyTorch loop has none);
* ragan: the real :class:`ragan.models.DCGAN` trained through ``keras.Model.fit`` (its
  ``train_step``) on an in-memory batch repeated by ``tf.data`` (input cost excluded on both
  sides). Variants: ``fit`` (the default), ``fit_spe4`` (``steps_per_execution=4``), ``fit_xla``
  (``jit_compile=True``), ``train`` (the whole ``ragan.train`` loop: TFRecord input pipeline,
  callbacks, no MLflow server);
* PyTorch: the same networks in eager mode, NCHW, ``torch.set_num_threads(threads)``;
* generation: generator images/s at batch 256 (ragan's ``GAN.generate`` with the EMA
  generator off, and a ``tf.function``-compiled generator call) versus PyTorch eager under
  ``torch.inference_mode()``.

It prints steps/s, images/s and the ratios ragan/PyTorch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# ----------------------------------------------------------------------------------------------
# PyTorch reference (the same architecture as ragan.layers.blocks)
# ----------------------------------------------------------------------------------------------


def filters_at(level: int, base: int) -> int:
    return int(min(base * 2 ** (level - 1), base * 8))


def build_torch_dcgan(latent_dim: int, image_size: int, channels: int, base: int):
    import torch
    from torch import nn

    blocks = int(math.log2(image_size // 4))
    top = filters_at(blocks, base)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Linear(latent_dim, 16 * top, bias=False)
            self.project_bn = nn.BatchNorm2d(top, eps=1e-5, momentum=0.1)
            layers = []
            in_filters = top
            for level in range(blocks - 1, 0, -1):
                out_filters = filters_at(level, base)
                layers += [
                    nn.ConvTranspose2d(in_filters, out_filters, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(out_filters, eps=1e-5, momentum=0.1),
                    nn.ReLU(inplace=True),
                ]
                in_filters = out_filters
            layers += [nn.ConvTranspose2d(in_filters, channels, 4, 2, 1), nn.Tanh()]
            self.body = nn.Sequential(*layers)

        def forward(self, z):
            x = self.project(z).view(-1, top, 4, 4)
            return self.body(torch.relu(self.project_bn(x)))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(channels, filters_at(1, base), 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
            for level in range(2, blocks + 1):
                layers += [
                    nn.Conv2d(filters_at(level - 1, base), filters_at(level, base), 4, 2, 1, bias=False),
                    nn.BatchNorm2d(filters_at(level, base), eps=1e-5, momentum=0.1),
                    nn.LeakyReLU(0.2, inplace=True),
                ]
            self.body = nn.Sequential(*layers)
            self.logit = nn.Linear(16 * top, 1)

        def forward(self, images):
            return self.logit(torch.flatten(self.body(images), 1))

    for module in (generator := Generator(), discriminator := Discriminator()):
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(layer.weight, 0.0, 0.02)
            elif isinstance(layer, nn.BatchNorm2d):
                nn.init.normal_(layer.weight, 1.0, 0.02)
                nn.init.zeros_(layer.bias)
    return generator, discriminator


def torch_training(args, real: np.ndarray) -> float:
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator, discriminator = build_torch_dcgan(args.latent_dim, args.image_size, 1, args.base_filters)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real_batch = torch.from_numpy(real.transpose(0, 3, 1, 2).copy())
    ones = torch.ones(args.batch_size, 1)
    zeros = torch.zeros(args.batch_size, 1)

    def step():
        z = torch.randn(args.batch_size, args.latent_dim)
        fake = generator(z)
        d_loss = bce(discriminator(real_batch), ones) + bce(discriminator(fake.detach()), zeros)
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()
        z = torch.randn(args.batch_size, args.latent_dim)
        g_loss = bce(discriminator(generator(z)), ones)
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
        g_optimizer.step()

    for _ in range(args.warmup):
        step()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    return args.steps / (time.perf_counter() - started)


def torch_generation(args) -> float:
    import torch

    torch.set_num_threads(args.threads)
    generator, _ = build_torch_dcgan(args.latent_dim, args.image_size, 1, args.base_filters)
    generator.eval()
    with torch.inference_mode():
        for _ in range(2):
            generator(torch.randn(args.generate_batch, args.latent_dim))
        started = time.perf_counter()
        for _ in range(args.generate_batches):
            generator(torch.randn(args.generate_batch, args.latent_dim)).numpy()
    return args.generate_batches * args.generate_batch / (time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------
# ragan
# ----------------------------------------------------------------------------------------------


def ragan_model(args, **compile_options):
    from ragan.models import DCGAN

    gan = DCGAN(
        {"latent_dim": args.latent_dim, "base_filters": args.base_filters, "ema_decay": 0.0},
        image_size=args.image_size,
        channels=1,
        seed=0,
    )
    gan.compile(**compile_options)
    return gan


def ragan_fit(args, real: np.ndarray, **compile_options) -> float:
    from ragan._tf import import_tf

    tf = import_tf()
    gan = ragan_model(args, **compile_options)
    dataset = tf.data.Dataset.from_tensors(tf.constant(real)).repeat()
    spe = compile_options.get("steps_per_execution", 1)
    warmup = max(args.warmup, spe) // spe * spe
    gan.fit(dataset, epochs=1, steps_per_epoch=warmup, shuffle=False, verbose=0)
    steps = max(args.steps // spe, 1) * spe
    started = time.perf_counter()
    gan.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return steps / (time.perf_counter() - started)


def ragan_train_loop(args, real: np.ndarray) -> float:
    """Steps/s of the whole ``ragan.train`` loop (TFRecord input, callbacks), after warm-up."""
    import ragan
    from ragan._tf import import_keras
    from ragan.data.manifest import Manifest, SplitInfo, shard_name
    from ragan.data.tfrecord import ShardWriter

    keras = import_keras()
    workdir = Path(tempfile.mkdtemp(prefix="ragan-bench-"))
    pixels = np.clip((real + 1) * 127.5, 0, 255).astype(np.uint8)
    (workdir / "data").mkdir()
    with ShardWriter(workdir / "data" / shard_name("train", 0, 1)) as writer:
        for index in range(len(pixels)):
            writer.write(pixels[index], label=-1, source_id=index)
    Manifest(
        image_size=args.image_size,
        channels=1,
        dtype="uint8",
        class_names=[],
        labelled=False,
        splits={"train": SplitInfo(len(pixels), {}, [writer.info()])},
    ).write(workdir / "data")
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    total = args.warmup + args.steps
    ragan.train(
        "dcgan",
        data=workdir / "data",
        out=workdir / "run",
        progress=False,
        callbacks=[Clock()],
        config={"latent_dim": args.latent_dim, "base_filters": args.base_filters, "ema_decay": 0.0},
        steps=total,
        batch_size=args.batch_size,
        log_every=total,
        checkpoint_every=total,
        sample_every=total,
        tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}",
    )
    measured = times[args.warmup - 1 :]
    return (len(measured) - 1) / (measured[-1] - measured[0])


def ragan_generation(args) -> tuple[float, float]:
    from ragan._tf import import_tf

    tf = import_tf()
    gan = ragan_model(args)
    n = args.generate_batch * args.generate_batches
    gan.generate(args.generate_batch, seed=0, batch_size=args.generate_batch)
    started = time.perf_counter()
    gan.generate(n, seed=0, batch_size=args.generate_batch)
    eager = n / (time.perf_counter() - started)

    compiled = tf.function(lambda z: gan.generator(z, training=False), reduce_retracing=True)
    latents = np.random.default_rng(0).normal(size=(args.generate_batch, args.latent_dim)).astype(np.float32)
    compiled(latents).numpy()
    started = time.perf_counter()
    for _ in range(args.generate_batches):
        compiled(latents).numpy()
    return eager, args.generate_batches * args.generate_batch / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=100)
    parser.add_argument("--base-filters", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="measured training steps per variant")
    parser.add_argument("--warmup", type=int, default=4, help="untimed steps first (tracing, allocator)")
    parser.add_argument("--repeats", type=int, default=1, help="measure everything this often; report medians")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both frameworks")
    parser.add_argument("--generate-batch", type=int, default=256)
    parser.add_argument("--generate-batches", type=int, default=8)
    parser.add_argument(
        "--variants", default="fit,fit_spe4,fit_xla,train", help="ragan variants among fit, fit_spe4, fit_xla, train"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    from ragan._tf import import_tf

    tf = import_tf()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    real = np.random.default_rng(0).uniform(-1, 1, (args.batch_size, args.image_size, args.image_size, 1))
    real = real.astype(np.float32)
    variants = {
        "fit": lambda: ragan_fit(args, real),
        "fit_spe4": lambda: ragan_fit(args, real, steps_per_execution=4),
        "fit_xla": lambda: ragan_fit(args, real, jit_compile=True),
        "train": lambda: ragan_train_loop(args, real),
    }
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    for name in chosen:
        if name not in variants:
            parser.error(f"unknown variant {name!r}; choose among {', '.join(variants)}")

    measurements: dict[str, list[float]] = {}
    # Repeats alternate between the frameworks, so that a busy machine slows both alike.
    for _ in range(args.repeats):
        if not args.no_torch:
            measurements.setdefault("torch_train_steps_per_sec", []).append(torch_training(args, real))
        for name in chosen:
            measurements.setdefault(f"ragan_{name}_steps_per_sec", []).append(variants[name]())
        if not args.no_torch:
            measurements.setdefault("torch_generate_images_per_sec", []).append(torch_generation(args))
        eager, compiled = ragan_generation(args)
        measurements.setdefault("ragan_generate_images_per_sec", []).append(eager)
        measurements.setdefault("ragan_compiled_generator_images_per_sec", []).append(compiled)
    results = {key: statistics.median(values) for key, values in measurements.items()}

    print(
        f"DCGAN {args.image_size}x{args.image_size}x1, batch {args.batch_size}, {args.threads} threads, "
        f"TensorFlow {tf.__version__}, median of {args.repeats}"
    )
    torch_train = results.get("torch_train_steps_per_sec")
    torch_generate = results.get("torch_generate_images_per_sec")
    if torch_train:
        import torch

        print(f"  PyTorch {torch.__version__} eager training: {torch_train:8.3f} steps/s")
    for name in chosen:
        value = results[f"ragan_{name}_steps_per_sec"]
        ratio = f"  ({value / torch_train:.2f}x PyTorch)" if torch_train else ""
        print(f"  ragan {name:9s} training:        {value:8.3f} steps/s{ratio}")
    if torch_generate:
        print(f"  PyTorch eager generator (batch {args.generate_batch}):  {torch_generate:8.0f} images/s")
    for key, label in (
        ("ragan_generate_images_per_sec", "GAN.generate         "),
        ("ragan_compiled_generator_images_per_sec", "tf.function generator"),
    ):
        ratio = f"  ({results[key] / torch_generate:.2f}x PyTorch)" if torch_generate else ""
        print(f"  ragan {label} (batch {args.generate_batch}): {results[key]:8.0f} images/s{ratio}")
    if args.json:
        record = {"args": vars(args), "results": results, "all": measurements}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
