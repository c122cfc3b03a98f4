"""ragan's GANs: shapes, one fit step + save/load (shared harness), learning, conditioning,
EMA, ADA, mixed precision, MirroredStrategy, user subclasses and configuration errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from gan_harness import constant_images, fit_steps, images_dataset, run_gan_test, tiny_gan

import ragan
from ragan._tf import import_keras, import_tf
from ragan.config import hparam
from ragan.errors import RaganError
from ragan.models import ACGAN, DCGAN, GAN, SNGAN, WGANGP, GANConfig, WGANGPConfig

tf = import_tf()
keras = import_keras()

ALL_MODELS = [DCGAN, WGANGP, SNGAN, ACGAN]
FAST_LEARNING = {"g_learning_rate": 1e-3, "d_learning_rate": 1e-3}


def classes_for(gan_class):
    return 2 if gan_class.always_conditional else 0


# ------------------------------------------------------------------------------------------------
# Networks
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gan_class", ALL_MODELS, ids=lambda c: c.gan_name)
@pytest.mark.parametrize("image_size,channels", [(16, 1), (16, 3), (32, 1), (32, 3)])
def test_networks_build_for_sizes_and_channels(gan_class, image_size, channels):
    gan = tiny_gan(gan_class, image_size=image_size, channels=channels, num_classes=classes_for(gan_class))
    images = gan.generate(2, seed=0)
    assert images.shape == (2, image_size, image_size, channels)
    logits = gan.discriminate(images, labels=[0, 1] if gan.discriminator_takes_labels else None)
    assert logits.shape == (2,) and np.all(np.isfinite(logits))


def conv_layers(model, kind):
    found = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # unwrap SpectralNormalization
        if isinstance(inner, kind):
            found.append(inner)
    return found


def test_dcgan_architecture_is_the_classic_one():
    gan = tiny_gan(DCGAN, image_size=64)  # base_filters 8
    ups = conv_layers(gan.generator, keras.layers.Conv2DTranspose)
    # 4x4 (64) -> 8x8 (32) -> 16x16 (16) -> 32x32 (8) -> 64x64 (channels)
    assert [layer.filters for layer in ups] == [32, 16, 8, 1]
    assert all(layer.kernel_size == (4, 4) and layer.strides == (2, 2) for layer in ups)
    assert all(not layer.use_bias for layer in ups[:-1])  # BatchNorm follows
    assert gan.generator.layers[-1].activation.__name__ == "tanh"
    downs = conv_layers(gan.discriminator, keras.layers.Conv2D)
    assert [layer.filters for layer in downs] == [8, 16, 32, 64]
    assert downs[0].use_bias and not any(layer.use_bias for layer in downs[1:])
    norms = [layer.name for layer in gan.discriminator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms == ["down_16_bn", "down_8_bn", "down_4_bn"]  # none after the first conv
    slopes = {layer.negative_slope for layer in gan.discriminator.layers if isinstance(layer, keras.layers.LeakyReLU)}
    assert slopes == {0.2}
    wide = tiny_gan(DCGAN, image_size=256)
    assert max(layer.filters for layer in conv_layers(wide.discriminator, keras.layers.Conv2D)) == 64  # capped at 8x


def test_wgan_gp_critic_has_no_batch_norm_and_paper_defaults():
    config = WGANGPConfig()
    assert (config.g_learning_rate, config.d_learning_rate, config.beta_1, config.beta_2) == (1e-4, 1e-4, 0.0, 0.9)
    assert config.d_steps == 5 and config.gp_weight == 10.0
    for norm in ("layer", "none"):
        gan = tiny_gan(WGANGP, critic_norm=norm)
        kinds = {type(layer).__name__ for layer in gan.discriminator.layers}
        assert "BatchNormalization" not in kinds
        assert ("LayerNormalization" in kinds) == (norm == "layer")
    gan.compile()
    assert float(gan.d_optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    assert gan.d_optimizer.beta_1 == 0.0 and gan.d_optimizer.beta_2 == 0.9


def test_sngan_normalises_every_discriminator_layer_and_uses_the_hinge_loss():
    gan = tiny_gan(SNGAN, conditional=True, num_classes=3)
    weighted = [
        layer
        for layer in gan.discriminator.layers
        if layer.weights and not isinstance(layer, keras.layers.SpectralNormalization)
    ]
    assert weighted == []  # every layer with weights is wrapped
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in gan.discriminator.layers)
    gan.compile()
    labels = np.arange(16) % 3
    fit_steps(gan, images_dataset(constant_images(16), labels), 5)
    for layer in gan.discriminator.layers:
        if isinstance(layer, keras.layers.SpectralNormalization):
            kernel = np.asarray(layer.kernel.numpy()).reshape(-1, layer.kernel.shape[-1])
            assert np.linalg.svd(kernel, compute_uv=False)[0] == pytest.approx(1.0, abs=0.15), layer.name
    real, fake = np.array([[0.3], [2.0]], np.float32), np.array([[-0.5], [0.2]], np.float32)
    expected = np.maximum(0, 1 - real.ravel()) + np.maximum(0, 1 + fake.ravel())
    np.testing.assert_allclose(np.asarray(gan.discriminator_loss(real, fake)), expected, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# The shared harness: one fit step, logs, save/load
# ------------------------------------------------------------------------------------------------
HARNESS_CASES = [
    (DCGAN, {}),
    (DCGAN, {"conditional": True, "augment": "ada"}),
    (WGANGP, {"d_steps": 2}),
    (WGANGP, {"d_steps": 1, "conditional": True, "augment": "diffaugment", "augment_policy": "translation"}),
    (SNGAN, {"conditional": True}),
    (ACGAN, {}),
]


@pytest.mark.parametrize(
    "gan_class,overrides",
    HARNESS_CASES,
    ids=lambda v: v.gan_name if isinstance(v, type) else "-".join(f"{k}={v[k]}" for k in v),
)
def test_fit_step_and_save_load_round_trip(gan_class, overrides, tmp_path):
    conditional = gan_class.always_conditional or overrides.get("conditional", False)
    run_gan_test(gan_class, tmp_path, num_classes=3 if conditional else 0, **overrides)
    assert ragan.get_gan(gan_class.gan_name) is gan_class


# ------------------------------------------------------------------------------------------------
# Learning
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gan_class", ALL_MODELS, ids=lambda c: c.gan_name)
def test_generator_moves_toward_a_constant_dataset(gan_class):
    # Every training image is the constant 0.5; the untrained generator outputs ~0 (tanh of small
    # weights), so its mean absolute error to the data starts near 0.5 and must fall well below.
    overrides = dict(FAST_LEARNING, d_steps=2) if gan_class is WGANGP else dict(FAST_LEARNING)
    num_classes = classes_for(gan_class)
    gan = tiny_gan(gan_class, num_classes=num_classes, **overrides)
    gan.compile()
    labels = np.arange(16) % 2 if num_classes else None
    target = 0.5
    initial = np.abs(gan.generate(64, seed=5, use_ema=False) - target).mean()
    fit_steps(gan, images_dataset(constant_images(16, value=target), labels), 45)
    trained = np.abs(gan.generate(64, seed=5, use_ema=False) - target).mean()
    averaged = np.abs(gan.generate(64, seed=5) - target).mean()
    assert initial > 0.4
    assert trained < 0.4 * initial, (initial, trained)
    assert averaged < 0.5 * initial, (initial, averaged)


def black_and_white_dataset():
    images = np.concatenate([constant_images(8, value=-0.8), constant_images(8, value=0.8)])
    labels = np.array([0] * 8 + [1] * 8)
    return images_dataset(images, labels, shuffle_seed=0)


def test_conditional_dcgan_generates_the_class_asked_for():
    gan = tiny_gan(DCGAN, num_classes=2, conditional=True, **FAST_LEARNING)
    gan.compile()
    fit_steps(gan, black_and_white_dataset(), 60)
    dark = gan.generate(32, labels=0, seed=1)
    bright = gan.generate(32, labels=[1] * 32, seed=1)
    assert bright.mean() - dark.mean() > 0.5, (dark.mean(), bright.mean())
    assert (bright.mean(axis=(1, 2, 3)) > dark.mean(axis=(1, 2, 3))).all()  # same z, label decides


def test_acgan_generates_what_its_classifier_recognises():
    gan = tiny_gan(ACGAN, num_classes=2, **FAST_LEARNING)
    gan.compile()
    fit_steps(gan, black_and_white_dataset(), 60)
    for label in (0, 1):
        predicted = gan.classify(gan.generate(32, labels=label, seed=2)).argmax(axis=1)
        assert (predicted == label).mean() >= 0.9, (label, predicted)
    assert gan.generate(32, labels=1, seed=2).mean() > gan.generate(32, labels=0, seed=2).mean() + 0.3


def mean_pairwise_distance(images) -> float:
    flat = images.reshape(len(images), -1).astype(np.float64)
    squared = (flat**2).sum(axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * flat @ flat.T, 0))
    return float(distances.sum() / (len(flat) * (len(flat) - 1)))


@pytest.mark.slow
@pytest.mark.parametrize("gan_class", [DCGAN, ACGAN], ids=lambda c: c.gan_name)
def test_conditional_generator_keeps_using_z(gan_class):
    # Regression test for a generator that ignores z and draws one image per label: with a label
    # embedding concatenated to z, 150 steps on the chest X-ray sample left same-label images only
    # ~0.25x as far apart as real ones (DCGAN and AC-GAN); class-conditional BatchNorm gives ~0.8-1.0x.
    data = np.load(Path(ragan.__file__).parent / "data" / "sample" / "pneumoniamnist_sample.npz")
    images = tf.image.resize(data["train_images"][..., None].astype(np.float32) / 127.5 - 1.0, (16, 16)).numpy()
    labels = data["train_labels"].reshape(-1).astype(np.int32)
    gan = tiny_gan(gan_class, num_classes=2, conditional=True, base_filters=16, ema_decay=0)
    gan.compile()
    fit_steps(gan, images_dataset(images, labels, batch_size=32, shuffle_seed=0), 150)
    for label in (0, 1):
        real_spread = mean_pairwise_distance(images[labels == label][:64])
        generated_spread = mean_pairwise_distance(gan.generate(64, labels=label, seed=1))
        assert generated_spread > 0.5 * real_spread, (label, generated_spread / real_spread)


def test_training_is_deterministic_given_the_seed():
    def train():
        gan = tiny_gan(DCGAN, seed=4, augment="diffaugment")
        gan.compile()
        fit_steps(gan, images_dataset(constant_images(16)), 3)
        return gan.generate(4, seed=0)

    np.testing.assert_array_equal(train(), train())


# ------------------------------------------------------------------------------------------------
# EMA and ADA state
# ------------------------------------------------------------------------------------------------
def test_ema_generator_averages_the_generator_weights():
    gan = tiny_gan(DCGAN, ema_decay=0.999)
    start = [w.numpy().copy() for w in gan.generator.weights]
    for ema_weight, weight in zip(gan.ema_generator.weights, start):
        np.testing.assert_array_equal(ema_weight.numpy(), weight)
    gan.compile()
    fit_steps(gan, images_dataset(constant_images(8)), 1)
    decay = min(0.999, (1 + 1) / (10 + 1))  # warm-up after one generator update
    for ema_weight, weight, before in zip(gan.ema_generator.weights, gan.generator.weights, start):
        if weight.trainable:
            expected = decay * before + (1 - decay) * weight.numpy()
            np.testing.assert_allclose(ema_weight.numpy(), expected, rtol=1e-5, atol=1e-7)
        else:  # BatchNorm statistics are copied
            np.testing.assert_array_equal(ema_weight.numpy(), weight.numpy())
    assert not np.array_equal(gan.generate(3, seed=0), gan.generate(3, seed=0, use_ema=False))
    without = tiny_gan(DCGAN, ema_decay=0)
    assert without.ema_generator is None
    np.testing.assert_array_equal(without.generate(3, seed=0), without.generate(3, seed=0, use_ema=False))


def test_ada_probability_follows_the_sign_of_d_on_real_images(tmp_path):
    gan = tiny_gan(DCGAN, augment="ada", ada_target=0.6, ada_kimg=0.1)  # step = 8 / 100
    assert float(gan.augment_probability.numpy()) == 0.0
    gan.update_augment_probability(tf.ones((8, 1)))  # D says "real" to all reals: over-fitting
    assert float(gan.augment_probability.numpy()) == pytest.approx(0.08)
    gan.update_augment_probability(-tf.ones((8, 1)))
    assert float(gan.augment_probability.numpy()) == pytest.approx(0.0)
    assert float(tiny_gan(DCGAN, augment="diffaugment").augment_probability.numpy()) == 1.0
    gan.augment_probability.assign(0.37)
    gan.save(tmp_path / "ada.keras")
    assert float(ragan.models.load_gan(tmp_path / "ada.keras").augment_probability.numpy()) == pytest.approx(0.37)


# ------------------------------------------------------------------------------------------------
# Generation options
# ------------------------------------------------------------------------------------------------
def test_generation_options():
    gan = tiny_gan(DCGAN, conditional=True, num_classes=3)
    np.testing.assert_array_equal(gan.resolve_labels(None, 7), [0, 1, 2, 0, 1, 2, 0])
    latents = gan.generation_latents(200, seed=3, truncation=0.5)
    assert np.abs(latents).max() <= 0.5 and latents.std() > 0.2
    np.testing.assert_array_equal(latents, gan.generation_latents(200, seed=3, truncation=0.5))
    batched = gan.generate(10, seed=9, batch_size=3)
    # Same latents and labels; only the convolution's batch-size-dependent rounding may differ.
    np.testing.assert_allclose(batched, gan.generate(10, seed=9), atol=1e-6)
    assert not np.array_equal(gan.generate(4, seed=1), gan.generate(4, seed=2))
    # Without a seed the model's own SeedGenerator advances: two calls differ.
    assert not np.array_equal(gan.generate(4), gan.generate(4))


# ------------------------------------------------------------------------------------------------
# Mixed precision and distribution
# ------------------------------------------------------------------------------------------------
def test_train_step_under_mixed_float16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        for gan_class, overrides in [(DCGAN, {}), (WGANGP, {"d_steps": 1})]:
            gan = tiny_gan(gan_class, **overrides)
            gan.compile()
            assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
            assert gan.generator.get_layer("project").compute_dtype == "float16"
            assert gan.generator.output.dtype == "float32" and gan.discriminator.output.dtype == "float32"
            logs = fit_steps(gan, images_dataset(constant_images(16)), 2)
            assert all(np.isfinite(value) for value in logs.values()), logs
            assert gan.generate(2, seed=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    from ragan._tf import import_tf
    tf = import_tf()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import ragan.models as models

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    images = np.full((32, 16, 16, 1), 0.5, np.float32)
    labels = np.arange(32) % 2
    report = {}
    for name, overrides in [("DCGAN", {"conditional": True, "augment": "ada"}),
                            ("WGANGP", {"d_steps": 2, "augment": "diffaugment"})]:
        with strategy.scope():
            gan = getattr(models, name)({"latent_dim": 16, "base_filters": 8, **overrides},
                                        image_size=16, num_classes=2)
            gan.compile()
        before = [w.numpy() for w in gan.ema_generator.weights]
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
        history = gan.fit(dataset, epochs=1, verbose=0, shuffle=False)
        report[name] = {
            "logs": {k: float(v[-1]) for k, v in history.history.items()},
            "ema_aggregations": sorted({w.value.aggregation.name for w in gan.ema_generator.weights}),
            "ema_moved": any(not np.array_equal(w.numpy(), b) for w, b in zip(gan.ema_generator.weights, before)),
            "g_updates": int(gan.g_optimizer.iterations.numpy()),
            "d_updates": int(gan.d_optimizer.iterations.numpy()),
            "augment_p": float(gan.augment_probability.numpy()),
        }
    seeds = strategy.run(tf.function(gan.next_seed))
    report["replica_seeds"] = [s.numpy().tolist() for s in strategy.experimental_local_results(seeds)]
    print("REPORT" + json.dumps(report))
    """
)


@pytest.mark.slow
def test_trains_under_mirrored_strategy_with_two_replicas(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT") :])
    for name, d_per_g in (("DCGAN", 1), ("WGANGP", 2)):
        entry = report[name]
        assert all(np.isfinite(v) for v in entry["logs"].values()), entry
        assert entry["ema_aggregations"] == ["ONLY_FIRST_REPLICA"]
        assert entry["ema_moved"]
        # batch(8) is the global batch (4 images per replica): 32 images = 4 steps.
        assert entry["g_updates"] == 4 and entry["d_updates"] == 4 * d_per_g
    assert report["DCGAN"]["augment_p"] > 0  # constant images: D quickly says "real" to reals
    assert report["WGANGP"]["augment_p"] == 1.0
    first, second = report["replica_seeds"]
    assert first != second  # replicas draw different noise


# ------------------------------------------------------------------------------------------------
# A user's own GAN
# ------------------------------------------------------------------------------------------------
@dataclass
class MarginHingeConfig(GANConfig):
    margin: float = hparam(1.0, help="Hinge margin of the discriminator loss.", min=0)


@ragan.register_gan("test_margin_hinge", config=MarginHingeConfig)
class MarginHingeGAN(GAN):
    """A user-style GAN: its own small discriminator and a hinge loss with a configurable margin."""

    def build_discriminator(self):
        images = keras.Input((self.image_size, self.image_size, self.channels))
        x = keras.layers.Conv2D(self.config.base_filters, 4, strides=4, padding="same")(images)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Flatten()(x)
        return keras.Model(images, keras.layers.Dense(1, dtype="float32")(x), name="discriminator")

    def discriminator_loss(self, real_logits, fake_logits):
        margin = self.config.margin
        return tf.nn.relu(margin - tf.reshape(real_logits, [-1])) + tf.nn.relu(margin + tf.reshape(fake_logits, [-1]))

    def generator_loss(self, fake_logits):
        return -tf.reshape(fake_logits, [-1])


def test_a_registered_user_subclass_trains_and_round_trips(tmp_path):
    assert "test_margin_hinge" in ragan.list_gans()
    assert ragan.get_gan("test-margin-hinge") is MarginHingeGAN
    gan = run_gan_test(MarginHingeGAN, tmp_path, margin=0.5)
    assert gan.config.margin == 0.5


def test_the_registry_imports_no_model_module():
    import ast

    source = Path(ragan.registry.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not [name for name in imported if name.startswith("ragan.models")], imported


def test_the_registry_finds_the_built_in_gans_when_imported_first():
    code = (
        "import sys\n"
        "from ragan.registry import get_gan, list_gans\n"
        "assert 'ragan.models' not in sys.modules  # imported on the first lookup, not before\n"
        "print(get_gan('stylegan2').__name__, list_gans())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split(" ", 1)[0] == "StyleGAN2"
    for name in ("acgan", "dcgan", "sngan", "stylegan2", "wgan_gp"):
        assert repr(name) in result.stdout


def test_a_subclass_without_losses_says_what_to_define():
    class Incomplete(GAN):
        pass

    gan = Incomplete({"latent_dim": 8, "base_filters": 4}, image_size=16)
    gan.compile()
    with pytest.raises(NotImplementedError, match="discriminator_loss"):
        fit_steps(gan, images_dataset(constant_images(8)), 1)


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: DCGAN(image_size=24), r"image_size=24 is not supported.*16, 32, 64, 128, 256"),
        (lambda: DCGAN(image_size=512), r"image_size=512"),
        (lambda: DCGAN(channels=2), r"channels=2"),
        (
            lambda: DCGAN({"conditional": True}),
            r"conditional=True: it needs a labelled dataset with at least 2 classes",
        ),
        (lambda: ACGAN(num_classes=1), r"ACGAN is always conditional"),
        (lambda: DCGAN({"latent_dimm": 8}), r"unknown hyperparameter 'latent_dimm'.*Did you mean 'latent_dim'"),
        (lambda: DCGAN({"augment": "diffaug"}), r"augment='diffaug' is not allowed.*Did you mean 'diffaugment'"),
        (
            lambda: DCGAN({"augment": "ada", "augment_policy": "colour"}),
            r"unknown augmentation 'colour'.*Did you mean 'color'",
        ),
        (lambda: DCGAN({"d_steps": 0}), r"d_steps=0 is below its minimum 1"),
        (lambda: DCGAN(config=[1, 2]), r"config must be a DCGANConfig"),
    ],
)
def test_bad_configurations_are_one_line_errors(build, message):
    with pytest.raises(RaganError, match=message) as error:
        build()
    assert "\n" not in str(error.value)


def test_bad_generation_requests_are_errors():
    plain = tiny_gan(DCGAN)
    with pytest.raises(RaganError, match="unconditional"):
        plain.generate(2, labels=1)
    with pytest.raises(RaganError, match="truncation"):
        plain.generate(2, truncation=0)
    with pytest.raises(RaganError, match=r"images must have shape \(n, 16, 16, 1\)"):
        plain.discriminate(np.zeros((2, 32, 32, 1)))
    with pytest.raises(RaganError, match="g_optimizer/d_optimizer"):
        plain.compile(loss="mse")
    conditional = tiny_gan(DCGAN, conditional=True, num_classes=2)
    with pytest.raises(RaganError, match=r"labels must be integers in 0\.\.1"):
        conditional.generate(2, labels=[0, 2])
    with pytest.raises(RaganError, match="labels has 3 entries but n=2"):
        conditional.generate(2, labels=[0, 1, 1])
    with pytest.raises(RaganError, match="needs the images' labels"):
        conditional.discriminate(np.zeros((2, 16, 16, 1)))
    with pytest.raises(RaganError, match="does not exist"):
        ragan.models.load_gan("no/such/model.keras")


def test_conditional_model_on_an_unlabelled_dataset_is_an_error():
    gan = tiny_gan(DCGAN, conditional=True, num_classes=2)
    gan.compile()
    with pytest.raises(RaganError, match="conditional but the training dataset has no labels"):
        fit_steps(gan, images_dataset(constant_images(8)), 1)
