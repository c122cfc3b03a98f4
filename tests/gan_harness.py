"""A shared test harness for ragan GANs, the built-in ones and users' own subclasses.

In the spirit of keras-hub's ``run_backbone_test``: one call builds a tiny model, checks its
networks' shapes, runs one ``fit`` step, and round-trips it through a ``.keras`` file, so every
model (and every user's subclass) is tested the same way.

Example (in a user's test file)::

    from gan_harness import run_gan_test

    def test_my_gan(tmp_path):
        run_gan_test(MyGAN, tmp_path)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ragan._tf import import_keras, import_tf
from ragan.models import GAN, load_gan

tf = import_tf()
keras = import_keras()

#: Small enough that a fit step takes milliseconds on a CPU.
TINY_CONFIG = {"latent_dim": 16, "base_filters": 8}


def tiny_gan(gan_class, *, image_size=16, channels=1, num_classes=0, seed=0, **overrides) -> GAN:
    """A ``gan_class`` with tiny networks (``TINY_CONFIG`` plus ``overrides``), not compiled."""
    return gan_class(
        {**TINY_CONFIG, **overrides}, image_size=image_size, channels=channels, num_classes=num_classes, seed=seed
    )


def constant_images(n, image_size=16, channels=1, value=0.5) -> np.ndarray:
    """``n`` images whose every pixel is ``value`` (float32, in [-1, 1])."""
    return np.full((n, image_size, image_size, channels), value, np.float32)


def images_dataset(images, labels=None, *, batch_size=8, repeat=True, shuffle_seed=None):
    """A ``tf.data`` pipeline of ``images`` (and labels), as the training stage feeds a GAN."""
    elements = images if labels is None else (images, np.asarray(labels, np.int32))
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(images), seed=shuffle_seed)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.repeat() if repeat else dataset


def fit_steps(gan: GAN, dataset, steps: int) -> dict:
    """Run ``steps`` training steps; return the last logs as floats."""
    history = gan.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return {name: float(np.ravel(values[-1])[0]) for name, values in history.history.items()}


def assert_round_trip(gan: GAN, directory) -> GAN:
    """Save ``gan`` as ``.keras``, reload it with ``safe_mode`` on, and check that nothing changed:
    class, config, generated images (EMA and raw generator), D's logits and the seed state."""
    path = Path(directory) / f"{type(gan).__name__.lower()}.keras"
    gan.save(path)
    loaded = load_gan(path)
    assert type(loaded) is type(gan)
    assert loaded.get_config() == gan.get_config()
    assert loaded.config == gan.config
    labels = 0 if gan.conditional else None
    for use_ema in (True, False):
        np.testing.assert_array_equal(
            loaded.generate(6, labels=labels, seed=11, use_ema=use_ema),
            gan.generate(6, labels=labels, seed=11, use_ema=use_ema),
        )
    probe = gan.generate(4, labels=labels, seed=12)
    d_labels = np.zeros(4, np.int32) if gan.discriminator_takes_labels else None
    np.testing.assert_array_equal(loaded.discriminate(probe, d_labels), gan.discriminate(probe, d_labels))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.seed_generator.state),
        keras.ops.convert_to_numpy(gan.seed_generator.state),
    )
    assert float(loaded.augment_probability.numpy()) == float(gan.augment_probability.numpy())
    if gan.g_optimizer is not None:
        assert int(loaded.g_optimizer.iterations.numpy()) == int(gan.g_optimizer.iterations.numpy())
        assert int(loaded.d_optimizer.iterations.numpy()) == int(gan.d_optimizer.iterations.numpy())
    return loaded


def run_gan_test(gan_class, directory, *, image_size=16, channels=1, num_classes=0, **overrides) -> GAN:
    """Build a tiny ``gan_class``, check its shapes, fit one step, round-trip it; return it.

    Args:
        gan_class: a registered :class:`ragan.models.GAN` subclass.
        directory: a temporary directory for the ``.keras`` file.
        image_size, channels, num_classes: the data the model is built for.
        **overrides: hyperparameters on top of ``TINY_CONFIG``.
    """
    gan = tiny_gan(gan_class, image_size=image_size, channels=channels, num_classes=num_classes, **overrides)
    shape = (image_size, image_size, channels)
    assert tuple(gan.generator.output_shape[1:]) == shape
    assert tuple(gan.discriminator.inputs[0].shape[1:]) == shape
    # get_config -> from_config rebuilds the same model, initial weights included.
    rebuilt = gan_class.from_config(gan.get_config())
    labels = 0 if gan.conditional else None
    np.testing.assert_array_equal(rebuilt.generate(3, labels=labels, seed=1), gan.generate(3, labels=labels, seed=1))

    gan.compile()
    images = constant_images(16, image_size, channels, value=0.5)
    labels_array = np.arange(16) % num_classes if gan.conditional else None
    logs = fit_steps(gan, images_dataset(images, labels_array), 1)
    for name in gan.log_names:
        assert name in logs, f"{name!r} missing from the logs {sorted(logs)}"
        assert np.isfinite(logs[name]), f"{name}={logs[name]}"
    assert int(gan.g_optimizer.iterations.numpy()) == 1
    assert int(gan.d_optimizer.iterations.numpy()) == gan.config.d_steps

    generated = gan.generate(5, labels=labels, seed=3)
    assert generated.shape == (5, *shape) and generated.dtype == np.float32
    assert np.all(np.abs(generated) <= 1.0)
    np.testing.assert_array_equal(generated, gan.generate(5, labels=labels, seed=3))
    assert_round_trip(gan, directory)
    return gan
