"""Training at scale: :func:`train`, its options (:class:`TrainConfig`), strategies, checkpoints.

Example:
    >>> from ragan.training import train, TrainConfig
    >>> run = train("dcgan", data="prepared", out="runs/dcgan", train_config=TrainConfig(kimg=2))
"""

from ragan.training.config import TrainConfig

__all__ = ["TrainConfig", "train", "describe_training", "run_summary", "TrainingDiverged"]


def __getattr__(name):
    # The loop imports TensorFlow-heavy modules; keep `import ragan.training` light (the CLI's
    # `ragan hparams` only needs TrainConfig).
    if name in {"train", "describe_training", "run_summary", "TrainingDiverged"}:
        from ragan.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'ragan.training' has no attribute {name!r}")
