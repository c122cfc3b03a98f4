"""Benchmark: the cost of the ADA augmentation (``ragan.layers.ada_augment``) per batch, on CPU.

ADA augments every image the discriminator sees (reals and fakes in the D step, fakes in the G
step, with gradients), so its cost adds to every training step. This times one call inside a
``tf.function`` with a dynamic batch, forward only and forward + backward (gradient with respect
to the images), for the ``bgc`` pipeline. Run by hand, not in CI::

    python benchmarks/ada_cost.py                          # 32 and 64 px, batch 32, 1 channel
    python benchmarks/ada_cost.py --sizes 128 --channels 3 --threads 2

Prints the fastest and the median of ``--repeats`` timed calls (the fastest is the figure to
quote on a shared machine; the median shows the noise).

Measured here (2 CPU cores shared with other jobs, load average ~15, TF 2.21, batch 32, 1 channel,
fastest of 40; forward / forward+backward, ms per batch): 32 px: p=0 0.6 / 0.6, p=0.2 ~11-20 /
~11-23, p=1 ~17-24 / ~17-26; 64 px: p=0 0.7 / 0.6, p=0.2 ~21-30 / ~36, p=1 ~38-70 / ~40-95.
The medians were 2-4x these; rerun on an idle machine for cleaner figures.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--probabilities", type=float, nargs="+", default=[0.0, 0.2, 1.0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--channels", type=int, default=1, choices=[1, 3])
    parser.add_argument("--pipeline", default="bgc")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="TF intra/inter-op threads (0: TF's default)")
    args = parser.parse_args(argv)

    from ragan._tf import import_tf
    from ragan.layers import ada_augment

    tf = import_tf()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    print(
        f"ada_augment, pipeline {args.pipeline!r}, batch {args.batch}, {args.channels} channel(s), "
        f"{args.repeats} repeats; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'size':>5} {'p':>5} {'forward ms (min / median)':>27} {'forward+backward ms':>24}")
    for size in args.sizes:
        images = tf.constant(
            np.random.default_rng(0).uniform(-1, 1, (args.batch, size, size, args.channels)).astype(np.float32)
        )
        spec = [
            tf.TensorSpec([None, size, size, args.channels]),
            tf.TensorSpec([], tf.float32),
            tf.TensorSpec([2], tf.int32),
        ]

        @tf.function(input_signature=spec)
        def forward(x, p, seed):
            return ada_augment(x, p, seed, pipeline=args.pipeline)

        @tf.function(input_signature=spec)
        def forward_backward(x, p, seed):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = ada_augment(x, p, seed, pipeline=args.pipeline)
            return tape.gradient(y, x, output_gradients=y)

        for p in args.probabilities:
            row = []
            for function in (forward, forward_backward):
                for warm in range(3):
                    function(images, p, tf.constant([warm, 0])).numpy()
                times = []
                for repeat in range(args.repeats):
                    start = time.perf_counter()
                    function(images, p, tf.constant([repeat, 1])).numpy()
                    times.append(1000 * (time.perf_counter() - start))
                row.append(f"{min(times):8.1f} / {np.median(times):6.1f}")
            print(f"{size:>5} {p:>5.2f} {row[0]:>27} {row[1]:>24}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
