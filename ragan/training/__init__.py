"""Training at scale: :func:`train`, its options (:class:`TrainConfig`), strategies, checkpoints.

Example:
    :func:`describe_training` resolves what :func:`train` would run, with the same arguments, without
    training (``train``'s own docstring has a runnable one-step run):

    >>> import ragan
    >>> images = np.random.default_rng(0).integers(0, 256, (16, 16, 16), dtype=np.uint8)   # 16 images, 16 px
    >>> np.savez("images.npz", images=images, labels=np.arange(16) % 2)
    >>> _ = ragan.prepare_dataset("images.npz", "prepared", image_size=16, split=(1, 0, 0), progress=False)
    >>> from ragan.training import TrainConfig, describe_training
    >>> plan = describe_training("dcgan", data="prepared", out="runs/dcgan", train_config=TrainConfig(kimg=2))
    >>> plan["schedule"]["total_steps"], plan["data"]["num_examples"]
    (32, 16)
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
