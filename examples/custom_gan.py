"""Your own GAN: a least-squares GAN (LSGAN) in ~30 lines, trained through the normal ``ragan`` CLI.

A new model is a subclass of ``ragan.models.GAN`` that defines its two losses (or whole steps,
or its own networks), plus a ``Config`` dataclass declaring its hyperparameters once. The
``@ragan.register_gan`` decorator then gives it every stage for free: ``ragan hparams lsgan``,
``ragan train lsgan --real-target 1 ...`` with one flag per hyperparameter, checkpoints and
resume, MLflow, ``ragan generate`` and ``ragan evaluate``.

Registration happens when this module is imported. The ``ragan`` command imports it with
``--import examples/custom_gan.py`` (or ``RAGAN_PLUGINS=examples/custom_gan.py`` in the
environment, which child processes such as multi-worker training inherit), so the stock CLI
trains, generates with and evaluates the new model:

    ragan --import examples/custom_gan.py hparams lsgan
    ragan --import examples/custom_gan.py train lsgan --data prepared --out runs/lsgan --kimg 20

Run:
    python examples/custom_gan.py --out runs/lsgan     # 32 px, 20 kimg on the bundled sample
    python examples/custom_gan.py --quick              # 16 px, 4 steps: a smoke run
"""

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from keras import ops  # noqa: E402 - after ragan's quiet TensorFlow import

import ragan
from ragan.losses.adversarial import per_example  # imports TensorFlow quietly


# The loss maths as pure functions of D's logits, one loss per example (the base class reduces
# them per global batch, which keeps multi-GPU training right).
def lsgan_discriminator_loss(real_logits, fake_logits, *, real_target=1.0, fake_target=0.0):
    """0.5 (D(x) - b)^2 + 0.5 (D(G(z)) - a)^2 (Mao et al. 2017, "Least Squares GANs", eq. 2)."""
    real_term = ops.square(per_example(real_logits) - real_target)
    fake_term = ops.square(per_example(fake_logits) - fake_target)
    return 0.5 * real_term + 0.5 * fake_term


def lsgan_generator_loss(fake_logits, *, generator_target=1.0):
    """0.5 (D(G(z)) - c)^2: G pulls D's output on fakes toward the value c it wants D to believe."""
    return 0.5 * ops.square(per_example(fake_logits) - generator_target)


@dataclass
class LSGANConfig(ragan.models.GANConfig):
    """LSGAN hyperparameters: the GANConfig ones (latent_dim, learning rates, ...) plus targets a, b, c."""

    # The paper's 0-1 coding (a=0, b=1, c=1); a=-1, b=1, c=0 minimises the Pearson chi^2 divergence.
    fake_target: float = ragan.hparam(0.0, help="a: the discriminator's target for generated images.")
    real_target: float = ragan.hparam(1.0, help="b: the discriminator's target for real images.")
    generator_target: float = ragan.hparam(
        1.0, help="c: the value the generator wants D to output on its images.", tune=ragan.Choice(0.0, 1.0)
    )


@ragan.register_gan("lsgan", config=LSGANConfig)
class LSGAN(ragan.models.GAN):
    """Least-squares GAN on the default DCGAN networks.

    Reference:
        Mao et al. 2017, "Least Squares Generative Adversarial Networks", ICCV (arXiv:1611.04076).
    """

    def discriminator_loss(self, real_logits, fake_logits):
        return lsgan_discriminator_loss(
            real_logits, fake_logits, real_target=self.config.real_target, fake_target=self.config.fake_target
        )

    def generator_loss(self, fake_logits):
        return lsgan_generator_loss(fake_logits, generator_target=self.config.generator_target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="output folder (default: a new temporary folder)")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test on CPU")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="ragan-lsgan-"))
    size = "16" if args.quick else "32"
    quick = ["--steps", "4", "--batch-size", "16", "--log-every", "2", "--base-filters", "8"]
    length = quick if args.quick else ["--kimg", "20"]

    # The real `ragan` command in a fresh process: `--import` registers LSGAN there first.
    plugin = ["--import", str(Path(__file__).resolve())]
    commands = [
        [
            "prepare",
            "sample:pneumoniamnist",
            "--out",
            str(out / "prepared"),
            "--image-size",
            size,
            "--overwrite",
            "--quiet",
        ],
        [*plugin, "hparams", "lsgan"],
        [
            *plugin,
            "train",
            "lsgan",
            "--data",
            str(out / "prepared"),
            "--out",
            str(out / "run"),
            "--resume",
            "--conditional",
            "true",
            "--generator-target",
            "1",
            *length,
        ],
        [*plugin, "generate", str(out / "run"), "--n", "32", "--out", str(out / "synthetic"), "--overwrite", "--quiet"],
    ]
    for command in commands:
        print("$ ragan", " ".join(command), flush=True)
        status = subprocess.run([sys.executable, "-m", "ragan", *command]).returncode
        if status != 0:
            raise SystemExit(status)

    gan = ragan.load_generator(out / "run")  # this process registered LSGAN by running this file
    print(f"\nloaded {type(gan).__name__} with {gan.config}")
    print(f"Outputs in {out}:\n  run        {out / 'run'}\n  synthetic  {out / 'synthetic'}")
