"""StyleGAN2-ADA: operations against NumPy references, official parameter counts and outputs,
training, resume, generation, import of official pickles, and the CLI."""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragan._tf import import_keras, import_tf
from ragan.errors import RaganError
from ragan.losses import path_length_penalty, r1_penalty
from ragan.models import StyleGAN2, load_gan
from ragan.models.stylegan2 import ops
from ragan.models.stylegan2.config import StyleGAN2Config, resolve_preset
from ragan.models.stylegan2.networks import Conv2dLayer, Discriminator, FullyConnected, Generator
from tests.runs import run_cli

tf = import_tf()
keras = import_keras()

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "data" / "stylegan2_ada_fixtures"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"{FIXTURES} (the shared test data) is absent")
FIXTURE_NAMES = ["sg2ada-32px-gray-uncond", "sg2ada-32px-rgb-cond3", "sg2ada-64px-gray-uncond"]

#: A StyleGAN2 small enough that a training step takes well under a second on a CPU.
TINY = {"cfg": "small", "latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16, "augment": "none"}


# ----------------------------------------------------------------------------------------------
# NumPy references
# ----------------------------------------------------------------------------------------------
def np_upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
    """The definition: insert up-1 zeros after each pixel, pad, convolve (true convolution,
    output footprint inside the image), keep every down-th pixel. x: (N, H, W, C)."""
    n, h, w, c = x.shape
    upsampled = np.zeros((n, h * up, w * up, c), x.dtype)
    upsampled[:, ::up, ::up, :] = x
    x0, x1, y0, y1 = pad
    padded = np.pad(upsampled, [(0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0)), (0, 0)])
    padded = padded[:, max(-y0, 0) : padded.shape[1] - max(-y1, 0), max(-x0, 0) : padded.shape[2] - max(-x1, 0)]
    flipped = kernel[::-1, ::-1] * gain
    kh, kw = kernel.shape
    out_h, out_w = padded.shape[1] - kh + 1, padded.shape[2] - kw + 1
    out = np.zeros((n, out_h, out_w, c), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += flipped[i, j] * padded[:, i : i + out_h, j : j + out_w, :]
    return out[:, ::down, ::down, :]


def np_correlate(x, weight, padding):
    """Per-sample 'same' correlation: x (N, H, W, I), weight (N, kh, kw, I, O)."""
    n, h, w, _ = x.shape
    kh, kw = weight.shape[1:3]
    padded = np.pad(x, [(0, 0), (padding, padding), (padding, padding), (0, 0)])
    out = np.zeros((n, h + 2 * padding - kh + 1, w + 2 * padding - kw + 1, weight.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwi,nio->nhwo", padded[:, i : i + out.shape[1], j : j + out.shape[2]], weight[:, i, j])
    return out


def np_modulated_conv(x, weight, styles, demodulate=True):
    per_sample = weight[None] * styles[:, None, None, :, None]  # (N, kh, kw, I, O)
    if demodulate:
        per_sample = per_sample / np.sqrt(np.sum(per_sample**2, axis=(1, 2, 3), keepdims=True) + 1e-8)
    return np_correlate(x, per_sample, weight.shape[0] // 2)


# ----------------------------------------------------------------------------------------------
# Operations
# ----------------------------------------------------------------------------------------------
def test_fir_filter_is_the_normalised_outer_product():
    kernel = ops.setup_filter([1, 3, 3, 1])
    np.testing.assert_allclose(kernel, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0)
    assert kernel.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "up,down,pad,gain",
    [(1, 1, (1, 2, 1, 2), 1.0), (2, 1, (2, 1, 2, 1), 4.0), (1, 2, (1, 1, 1, 1), 1.0), (1, 1, (-1, 2, 0, -1), 2.0)],
)
def test_upfirdn2d_matches_the_numpy_definition(up, down, pad, gain):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    kernel = ops.setup_filter([1, 3, 3, 1]) * np.array([[1.0], [0.5], [2.0], [1.0]], np.float32)  # not symmetric
    got = ops.upfirdn2d(tf.constant(x), kernel, up=up, down=down, pad=pad, gain=gain).numpy()
    np.testing.assert_allclose(got, np_upfirdn2d(x, kernel, up, down, pad, gain), atol=1e-5)


def test_upsample_and_downsample_keep_a_constant_image_and_double_or_halve_the_size():
    x = tf.fill([1, 8, 8, 2], 3.0)
    kernel = ops.setup_filter()
    up = ops.upsample2d(x, kernel).numpy()
    down = ops.downsample2d(x, kernel).numpy()
    assert up.shape == (1, 16, 16, 2) and down.shape == (1, 4, 4, 2)
    # Away from the zero-padded border the level is kept exactly.
    np.testing.assert_allclose(up[:, 2:-2, 2:-2], 3.0, rtol=1e-6)
    np.testing.assert_allclose(down[:, 1:-1, 1:-1], 3.0, rtol=1e-6)


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_convolution_matches_per_sample_weights(demodulate):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 6, 4)).astype(np.float32)
    weight = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    styles = rng.normal(size=(3, 4)).astype(np.float32) + 1.0
    got = ops.modulated_conv2d(
        tf.constant(x), tf.constant(weight), tf.constant(styles), demodulate=demodulate, padding=1
    ).numpy()
    np.testing.assert_allclose(got, np_modulated_conv(x, weight, styles, demodulate), rtol=1e-4, atol=1e-4)


def test_demodulation_gives_unit_output_variance_for_unit_input():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 32, 32, 64)).astype(np.float32)
    weight = rng.normal(size=(3, 3, 64, 64)).astype(np.float32)
    styles = rng.uniform(0.1, 10.0, size=(4, 64)).astype(np.float32)
    y = ops.modulated_conv2d(tf.constant(x), tf.constant(weight), tf.constant(styles), padding=1).numpy()
    assert float(np.std(y[:, 2:-2, 2:-2])) == pytest.approx(1.0, abs=0.05)


def test_upsampling_modulated_convolution_is_transposed_convolution_then_filter():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    weight = rng.normal(size=(3, 3, 3, 2)).astype(np.float32)
    styles = np.ones((2, 3), np.float32)
    got = ops.modulated_conv2d(
        tf.constant(x),
        tf.constant(weight),
        tf.constant(styles),
        demodulate=False,
        up=2,
        kernel=ops.setup_filter(),
        padding=1,
    ).numpy()
    # Reference: scatter each input pixel's kernel onto the 2x grid (a transposed convolution),
    # then the FIR filter with gain 4 and padding 1, as the official conv2d_resample does.
    full = np.zeros((2, 9, 9, 2))
    for i in range(4):
        for j in range(4):
            full[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3] += np.einsum("ni,hwio->nhwo", x[:, i, j], weight)
    expected = np_upfirdn2d(full, ops.setup_filter(), pad=(1, 1, 1, 1), gain=4.0)
    assert got.shape == (2, 8, 8, 2)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_equalised_learning_rate_scales_weights_at_run_time():
    dense = FullyConnected(8, 3, lr_multiplier=0.01, bias_init=0.0)
    # Stored weights are N(0, 1/lr^2): the run-time weight is N(0, 1/in).
    assert float(np.std(dense.weight.numpy())) == pytest.approx(100.0, rel=0.35)
    weight = np.random.default_rng(4).normal(size=(8, 3)).astype(np.float32)
    dense.weight.assign(weight)
    dense.bias.assign(np.array([1.0, 2.0, 3.0], np.float32))
    x = np.ones((2, 8), np.float32)
    np.testing.assert_allclose(
        dense(x).numpy(), x @ (weight * 0.01 / np.sqrt(8)) + 0.01 * np.array([1, 2, 3]), rtol=1e-5
    )
    conv = Conv2dLayer(4, 2, 3)
    kernel = np.random.default_rng(5).normal(size=(3, 3, 4, 2)).astype(np.float32)
    conv.weight.assign(kernel)
    image = np.random.default_rng(6).normal(size=(1, 5, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        conv(image).numpy(), np_correlate(image, (kernel / np.sqrt(36))[None], 1), rtol=1e-4, atol=1e-5
    )


def test_minibatch_stddev_appends_the_group_standard_deviation():
    x = np.random.default_rng(7).normal(size=(4, 2, 2, 3)).astype(np.float32)
    y = ops.minibatch_stddev(tf.constant(x), group_size=2).numpy()
    assert y.shape == (4, 2, 2, 4)
    groups = x.reshape(2, 2, 2, 2, 3)  # (G, n, H, W, C): samples i and i + 2 form a group
    expected = np.sqrt(groups.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(y[:, 0, 0, 3], np.tile(expected, 2), rtol=1e-5)


def test_r1_penalty_is_the_squared_gradient_norm():
    weights = np.random.default_rng(8).normal(size=(1, 4, 4, 1)).astype(np.float32)
    images = np.random.default_rng(9).normal(size=(3, 4, 4, 1)).astype(np.float32)

    def toy_d(x):  # D(x) = sum(a * x^2): grad = 2 a x
        return tf.reduce_sum(weights * tf.square(x), axis=[1, 2, 3])

    expected = np.sum((2 * weights * images) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(r1_penalty(toy_d, tf.constant(images)).numpy(), expected, rtol=1e-5)


def test_path_length_penalty_formula():
    gradients = np.random.default_rng(10).normal(size=(5, 3, 4)).astype(np.float32)
    lengths = np.sqrt((gradients**2).sum(axis=2).mean(axis=1))
    target = 0.7 + 0.01 * (lengths.mean() - 0.7)
    penalty, new_mean = path_length_penalty(tf.constant(gradients), 0.7, decay=0.01)
    np.testing.assert_allclose(penalty.numpy(), (lengths - target) ** 2, rtol=1e-5)
    assert float(new_mean) == pytest.approx(target, rel=1e-6)


# ----------------------------------------------------------------------------------------------
# Architecture parity with the official networks
# ----------------------------------------------------------------------------------------------
OFFICIAL_COUNTS = [  # (resolution, channels, classes, mapping layers, channel_base, G, D) from the fixtures' README
    (64, 1, 0, 2, 16384, 22_238_990, 23_406_849),
    (128, 1, 0, 2, 16384, 22_944_401, 23_882_113),
    (128, 1, 2, 2, 16384, 23_208_081, 26_247_040),
    (256, 3, 0, 2, 16384, 23_191_522, 24_001_089),
    (256, 3, 0, 8, 16384, 24_767_458, 24_001_089),
    (512, 3, 0, 8, 32768, 30_276_583, 28_982_849),
    (1024, 3, 0, 8, 32768, 30_370_060, 29_012_513),
]


def _count(network) -> int:
    return sum(int(np.prod(v.shape)) for v in network.trainable_weights)


@pytest.mark.parametrize(
    "resolution,channels,classes,mapping,base,g_params,d_params",
    OFFICIAL_COUNTS,
    ids=[f"{r[0]}px-{r[1]}ch-{r[2]}cls-map{r[3]}" for r in OFFICIAL_COUNTS],
)
def test_parameter_counts_equal_the_official_ones(resolution, channels, classes, mapping, base, g_params, d_params):
    generator = Generator(
        512,
        512,
        resolution,
        channels,
        classes,
        mapping_layers=mapping,
        channel_base=base,
        channel_max=512,
        conv_clamp=256,
    )
    discriminator = Discriminator(resolution, channels, classes, channel_base=base, channel_max=512, conv_clamp=256)
    assert (_count(generator), _count(discriminator)) == (g_params, d_params)


def test_auto_preset_builds_the_official_auto_network():
    gan = StyleGAN2({"cfg": "auto", "augment": "none"}, image_size=64, channels=1)
    assert (_count(gan.generator), _count(gan.discriminator)) == (22_238_990, 23_406_849)
    resolved = resolve_preset(gan.config, 64)
    assert resolved.batch_size == 32 and resolved.r1_gamma == pytest.approx(0.0002 * 64**2 / 32)
    assert resolved.ema_kimg == 10 and resolved.mbstd_group == 4 and resolved.g_learning_rate == 0.0025


def test_small_preset_is_small():
    gan = StyleGAN2({"cfg": "small", "augment": "none"}, image_size=64, channels=1)
    assert _count(gan.generator) + _count(gan.discriminator) < 3_000_000


def test_every_preset_value_can_be_overridden():
    resolved = resolve_preset(StyleGAN2Config(cfg="paper256", r1_gamma=3.0, mapping_layers=4, ema_kimg=0.5), 256)
    assert (resolved.r1_gamma, resolved.mapping_layers, resolved.ema_kimg) == (3.0, 4, 0.5)
    assert resolve_preset(StyleGAN2Config(cfg="cifar"), 32).pl_weight == 0.0


@needs_fixtures
@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_imported_official_networks_reproduce_the_official_outputs(name):
    from ragan.models.stylegan2.pickle_import import import_network_pickle

    gan, info = import_network_pickle(FIXTURES / f"{name}.pkl")
    reference = np.load(FIXTURES / f"{name}.npz")
    case = json.loads((FIXTURES / "cases.json").read_text())[name]
    assert (_count(gan.generator), _count(gan.discriminator)) == (case["g_params"], case["d_params"])
    assert info["networks"] == ["G", "D", "G_ema"]
    z, c = reference["z"], reference["c"]
    labels = c.argmax(axis=1) if c.shape[1] else None
    ws = gan.map_latents(z, labels)
    np.testing.assert_allclose(ws, reference["ws_psi1"], atol=1e-3)
    for psi, key in ((1.0, "images_psi1"), (0.7, "images_psi07")):
        images = gan.generate(latents=z, labels=labels, truncation=psi, noise_mode="const", clip=False)
        assert np.max(np.abs(images.transpose(0, 3, 1, 2) - reference[key])) <= 1e-3
        clipped = gan.generate(latents=z, labels=labels, truncation=psi, noise_mode="const")
        assert np.max(np.abs(clipped.transpose(0, 3, 1, 2) - np.clip(reference[key], -1, 1))) <= 1e-3
    logits = gan.discriminate(reference["images_psi1"].transpose(0, 2, 3, 1), labels)
    assert np.max(np.abs(logits - reference["d_logits"].reshape(-1))) <= 1e-3


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------
def tiny(image_size=16, channels=1, num_classes=0, seed=0, **overrides):
    return StyleGAN2(
        {**TINY, **overrides}, image_size=image_size, channels=channels, num_classes=num_classes, seed=seed
    )


def dataset(n=16, image_size=16, channels=1, labels=False, batch=8):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (n, image_size, image_size, channels)).astype(np.float32)
    elements = (images, (np.arange(n) % 2).astype(np.int32)) if labels else images
    return tf.data.Dataset.from_tensor_slices(elements).batch(batch, drop_remainder=True).repeat()


def test_training_steps_run_the_lazy_regularisers_and_move_the_ema(tmp_path):
    gan = tiny(r1_interval=2, pl_interval=2, ema_kimg=0.01, ema_rampup=0.0)
    gan.compile()
    before = gan.ema_generator.get_weights()
    history = gan.fit(dataset(), steps_per_epoch=3, epochs=1, verbose=0)
    logs = {k: float(np.ravel(v)[-1]) for k, v in history.history.items()}
    assert {"d_loss", "g_loss", "r1_penalty", "pl_penalty"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    assert logs["r1_penalty"] > 0 and logs["pl_penalty"] > 0 and float(gan.pl_mean.numpy()) > 0
    # Main steps plus the regularisation steps at steps 0 and 2, each one optimizer update.
    assert int(gan.g_optimizer.iterations.numpy()) == 3 + 2
    assert int(gan.d_optimizer.iterations.numpy()) == 3 + 2
    assert int(gan.step_counter.numpy()) == 3 and float(gan.images_seen.numpy()) == 24
    # The schedule is decided once: each phase is traced once, whatever regularisers are due.
    assert [phase.name for phase in gan.phases] == ["G main", "G reg", "D main", "D reg"]
    assert gan.compiled_phases == [(name, False) for name in ("D main", "D reg", "G main", "G reg")]
    assert all(gan.phase_function(phase, False).experimental_get_tracing_count() == 1 for phase in gan.phases)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(before, gan.ema_generator.get_weights()))
    assert np.abs(gan.generator.mapping.w_avg.numpy()).max() > 0


def test_each_phase_updates_its_network_with_one_fused_adam_kernel_per_weight():
    # Keras's Adam builds about a dozen element-wise ops per weight into every traced phase; the
    # fused update (ragan._keras_internals.fused_adam_update) one ResourceApplyAdam, a third fewer
    # ops to trace and to run at the first call.
    gan = tiny(r1_interval=2, pl_interval=2)
    gan.compile()
    gan.fit(dataset(), steps_per_epoch=1, epochs=1, verbose=0)
    batch = next(iter(dataset()))
    for phase in gan.phases:
        graph = gan.phase_function(phase, False).get_concrete_function(batch).graph
        kernels = [op.type for op in graph.get_operations()].count("ResourceApplyAdam")
        network = gan.generator if phase.name.startswith("G") else gan.discriminator
        assert kernels == len(network.trainable_variables), phase.name


def test_logs_the_ada_heuristic_mean_sign_of_d_on_real_images_per_tick():
    # D's learning rate 0 keeps D fixed, so the tick's E[sign(D(real))] can be recomputed from
    # the batches it saw (the dataset is not shuffled: batches 0, 1, 0 of 8 images).
    gan = tiny(d_learning_rate=0.0, r1_interval=0, pl_weight=0.0)
    gan.compile()
    images = np.concatenate([batch for batch in dataset().take(3).as_numpy_iterator()])

    def real_logits():
        return np.concatenate([gan.discriminator(images[i : i + 8], training=True).numpy() for i in (0, 8, 16)])

    # D's output bias moved so that its real scores straddle 0 (a constant could not pass).
    out = gan.discriminator.b4.out
    out.bias.assign(out.bias - float(np.median(real_logits())) + 1e-3)
    signs = np.sign(real_logits()).reshape(3, 8).mean(axis=1)
    assert -1 < signs.mean() < 1
    history = gan.fit(dataset(), steps_per_epoch=3, epochs=1, verbose=0)
    assert float(np.ravel(history.history["real_sign"])[-1]) == pytest.approx(signs.mean(), abs=1e-6)


def test_lazy_regularisation_corrects_adam():
    gan = tiny()
    gan.compile()
    assert float(gan.g_optimizer.learning_rate.numpy()) == pytest.approx(0.0025 * 4 / 5)
    assert float(gan.d_optimizer.learning_rate.numpy()) == pytest.approx(0.0025 * 16 / 17)
    assert gan.d_optimizer.beta_2 == pytest.approx(0.99 ** (16 / 17))
    assert gan.g_optimizer.beta_1 == 0.0 and gan.g_optimizer.epsilon == 1e-8


def test_generation_truncation_noise_modes_and_latents():
    gan = tiny(num_classes=2, conditional=True)
    z = gan.generation_latents(4, seed=5)
    a = gan.generate(latents=z, labels=[0, 1, 0, 1], noise_mode="const")
    assert a.shape == (4, 16, 16, 1) and a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    np.testing.assert_array_equal(a, gan.generate(4, labels=[0, 1, 0, 1], seed=5))
    # psi -> 0 collapses every image of a class onto the image of w_avg.
    collapsed = gan.generate(4, labels=0, seed=1, truncation=1e-6, clip=False)
    assert np.abs(collapsed - collapsed[:1]).max() < 1e-4
    assert np.abs(gan.generate(4, labels=0, seed=1, clip=False) - collapsed[:1]).max() > 1e-3
    # Labels change the image; random noise changes it, deterministically for a seed.
    assert np.abs(gan.generate(latents=z, labels=0) - gan.generate(latents=z, labels=1)).max() > 1e-4
    gan.generator.synthesis.blocks[-1].conv1.noise_strength.assign(1.0)
    gan.ema_generator.synthesis.blocks[-1].conv1.noise_strength.assign(1.0)
    r1 = gan.generate(latents=z, labels=0, noise_mode="random", seed=1)
    np.testing.assert_array_equal(r1, gan.generate(latents=z, labels=0, noise_mode="random", seed=1))
    assert np.abs(r1 - gan.generate(latents=z, labels=0, noise_mode="none")).max() > 1e-4
    with pytest.raises(RaganError, match="noise_mode"):
        gan.generate(2, labels=0, noise_mode="loud")
    with pytest.raises(RaganError, match="latents"):
        gan.generate(latents=np.zeros((2, 3)), labels=0)


def test_different_latents_give_different_images_of_the_same_class():
    gan = tiny(num_classes=2, conditional=True)
    images = gan.generate(6, labels=1, seed=0)
    distances = [np.abs(images[i] - images[j]).mean() for i in range(6) for j in range(i + 1, 6)]
    assert min(distances) > 1e-3


def test_keras_round_trip(tmp_path):
    gan = tiny(num_classes=2, conditional=True, augment="fixed", augment_p=0.3)
    gan.compile()
    gan.save(tmp_path / "sg2.keras")
    loaded = load_gan(tmp_path / "sg2.keras")
    assert isinstance(loaded, StyleGAN2) and loaded.config == gan.config
    for use_ema in (True, False):
        np.testing.assert_array_equal(
            loaded.generate(4, labels=1, seed=2, use_ema=use_ema), gan.generate(4, labels=1, seed=2, use_ema=use_ema)
        )
    probe = gan.generate(4, labels=0, seed=3)
    np.testing.assert_array_equal(loaded.discriminate(probe, [0] * 4), gan.discriminate(probe, [0] * 4))
    assert float(loaded.augment_probability.numpy()) == pytest.approx(0.3)


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    from ragan.training.checkpoint import CheckpointManager

    def fresh():
        gan = tiny(r1_interval=2, pl_interval=2, augment="ada", augment_p=0.5, ada_kimg=1, ada_interval=2)
        gan.compile()
        return gan

    # The uninterrupted run is the saved model itself, going on in memory after the checkpoint (two
    # models to trace instead of three: tracing is most of this test's time).
    data = dataset(n=32)
    straight = fresh()
    straight.fit(data.take(3), steps_per_epoch=3, epochs=1, verbose=0)
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(straight, 3)
    saved = {"pl_mean": float(straight.pl_mean.numpy()), "p": float(straight.augment_probability.numpy())}
    straight.fit(data.skip(3), steps_per_epoch=2, epochs=1, verbose=0)

    resumed = fresh()
    manager.restore(resumed, manager.latest())
    assert float(resumed.pl_mean.numpy()) == saved["pl_mean"] != 0.0
    assert int(resumed.step_counter.numpy()) == 3
    assert float(resumed.augment_probability.numpy()) == saved["p"] != 0.5
    resumed.fit(data.skip(3), steps_per_epoch=2, epochs=1, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert float(resumed.pl_mean.numpy()) == pytest.approx(float(straight.pl_mean.numpy()), rel=1e-5)
    assert float(resumed.augment_probability.numpy()) == pytest.approx(float(straight.augment_probability.numpy()))


@pytest.mark.slow
@pytest.mark.parametrize(
    "policy,low,tolerance",
    [("mixed_float16", tf.float16, 1e-3), ("mixed_bfloat16", tf.bfloat16, 1e-2)],
    ids=["float16", "bfloat16"],
)
def test_mixed_precision_matches_float32_trains_and_resumes_exactly(policy, low, tolerance, tmp_path):
    """The top num_fp16_res blocks compute in float16 (loss-scaled) or bfloat16, as under
    --mixed-precision; the policy is set only while the model is built, as ragan.train does."""
    from ragan.training.checkpoint import CheckpointManager

    settings = {**TINY, "channel_base": 256, "r1_interval": 2, "pl_interval": 2}

    def build():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            gan = StyleGAN2(settings, image_size=32)
        finally:
            keras.config.set_dtype_policy(previous)
        return gan

    reference = StyleGAN2(settings, image_size=32)
    mixed = build()
    # 32 px with num_fp16_res=4: the 8, 16 and 32 px blocks of G and D compute in low precision.
    assert [block.block_dtype for block in mixed.generator.synthesis.blocks] == [tf.float32] + [low] * 3
    assert [block.block_dtype for block in mixed.discriminator.blocks] == [low] * 3
    for source, target in zip(reference.weights, mixed.weights):
        target.assign(source)
    z = reference.generation_latents(8, seed=1)
    full = reference.generate(latents=z, clip=False)
    half = mixed.generate(latents=z, clip=False)
    # Within the stated tolerance of the images' range, and not equal (it did compute in low precision).
    assert 0 < np.abs(full - half).max() <= tolerance * np.abs(full).max()
    probe = np.clip(full, -1, 1)
    assert np.abs(reference.discriminate(probe) - mixed.discriminate(probe)).max() <= tolerance

    mixed.compile()
    if policy == "mixed_float16":
        assert isinstance(mixed.g_optimizer, keras.optimizers.LossScaleOptimizer)
    data = dataset(n=32, image_size=32)
    history = mixed.fit(data.take(3), steps_per_epoch=3, epochs=1, verbose=0)
    logs = {k: float(np.ravel(v)[-1]) for k, v in history.history.items()}
    assert {"d_loss", "g_loss", "r1_penalty", "pl_penalty"} <= set(logs) and all(np.isfinite(list(logs.values())))
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(mixed, 3)
    mixed.fit(data.skip(3), steps_per_epoch=2, epochs=1, verbose=0)
    resumed = build()
    resumed.compile()
    manager.restore(resumed, manager.latest())
    resumed.fit(data.skip(3), steps_per_epoch=2, epochs=1, verbose=0)
    for a, b in zip(mixed.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.isfinite(mixed.generate(4, seed=0)).all()


@pytest.mark.slow
def test_ada_at_p_zero_skips_the_pipeline_and_trains_exactly_as_without_augmentation():
    # ada_target 1: E[sign(D(real))] never exceeds it, so p stays 0 while ADA's bookkeeping runs.
    plain, ada = tiny(), tiny(augment="ada", augment_p=0.0, ada_target=1.0, ada_interval=1)
    for gan in (plain, ada):
        gan.compile()
        gan.fit(dataset(), steps_per_epoch=2, epochs=1, verbose=0)
    assert float(ada.augment_probability.numpy()) == 0.0 and not ada.augments_now()
    # The phases compiled without the pipeline, and the same random stream as augment="none".
    assert {augment for _, augment in ada.compiled_phases} == {False}
    for a, b in zip(
        plain.generator.get_weights() + plain.discriminator.get_weights(),
        ada.generator.get_weights() + ada.discriminator.get_weights(),
    ):
        np.testing.assert_array_equal(a, b)
    ada.augment_probability.assign(0.2)
    assert ada.augments_now()


def test_freeze_d_keeps_the_first_layers_fixed():
    gan = tiny(freeze_d=2)
    frozen = [gan.discriminator.blocks[0].fromrgb.weight, gan.discriminator.blocks[0].conv0.weight]
    assert all(not v.trainable for v in frozen)
    assert gan.discriminator.blocks[0].conv1.weight.trainable
    before = [v.numpy().copy() for v in frozen]
    gan.compile()
    gan.fit(dataset(), steps_per_epoch=2, epochs=1, verbose=0)
    for value, variable in zip(before, frozen):
        np.testing.assert_array_equal(value, variable.numpy())


def test_an_unconditional_network_starts_a_conditional_one_that_makes_the_same_images():
    source = tiny(seed=1)
    target = tiny(num_classes=3, conditional=True, seed=2)
    report = target.transfer_from(source)
    # Only what conditioning adds starts fresh: G's label embedding, D's label mapping and projection output.
    skipped = {entry.split(" ")[0] for entry in report["skipped"]}
    assert skipped and all(
        name.startswith(("generator/mapping.embed.", "ema_generator/mapping.embed.", "discriminator/mapping."))
        or name.startswith("discriminator/b4.out.")
        for name in skipped
    ), skipped
    assert "generator/mapping.fc0.weight (its z rows; the new label rows start at zero)" in report["loaded"]
    # Before fine-tuning, every class gets the pretrained network's image for the same latents.
    z = np.random.default_rng(0).standard_normal((4, 16)).astype("float32")
    expected = source.generate(latents=z, noise_mode="const")
    for label in range(3):
        np.testing.assert_allclose(target.generate(latents=z, labels=label, noise_mode="const"), expected, atol=1e-5)
    # The discriminator's blocks are the source's (the convolutions D learnt on all the images).
    np.testing.assert_array_equal(target.discriminator.b4.fc.weight.numpy(), source.discriminator.b4.fc.weight.numpy())


def test_image_sizes_up_to_1024_and_refusals():
    gan = StyleGAN2({**TINY, "channel_base": 1024, "channel_max": 8}, image_size=1024, channels=3)
    assert gan.generate(1, seed=0, batch_size=1).shape == (1, 1024, 1024, 3)
    with pytest.raises(RaganError, match="image_size=48"):
        StyleGAN2(TINY, image_size=48)
    with pytest.raises(RaganError, match="cfg"):
        StyleGAN2({"cfg": "paper2048"}, image_size=32)


# ----------------------------------------------------------------------------------------------
# Reading official pickles safely
# ----------------------------------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_the_pickle_reader_refuses_code(tmp_path):
    from ragan.models.stylegan2.pickle_reader import read_network_pickle

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G": _Evil()}))
    with pytest.raises(RaganError, match="refused to load it"):
        read_network_pickle(path)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    (tmp_path / "text.pkl").write_text("hello")
    with pytest.raises(RaganError, match="text.pkl"):
        read_network_pickle(tmp_path / "text.pkl")
    with pytest.raises(RaganError, match="no such file"):
        read_network_pickle(tmp_path / "missing.pkl")


@needs_fixtures
def test_rgb_network_imported_as_greyscale_keeps_its_grey_output():
    from ragan.models.stylegan2.pickle_import import import_network_pickle

    rgb, _ = import_network_pickle(FIXTURES / "sg2ada-32px-rgb-cond3.pkl")
    grey, info = import_network_pickle(FIXTURES / "sg2ada-32px-rgb-cond3.pkl", channels=1)
    assert info["channels_in_file"] == 3 and grey.channels == 1
    z = rgb.generation_latents(3, seed=0)
    colour = rgb.generate(latents=z, labels=[0, 1, 2], clip=False)
    np.testing.assert_allclose(
        grey.generate(latents=z, labels=[0, 1, 2], clip=False)[..., 0], colour.mean(axis=-1), atol=1e-4
    )
    # D of a grey image equals the RGB D of the same image repeated over the colours.
    probe = np.clip(colour.mean(axis=-1, keepdims=True), -1, 1)
    np.testing.assert_allclose(
        grey.discriminate(probe, [0, 1, 2]), rgb.discriminate(np.repeat(probe, 3, -1), [0, 1, 2]), atol=1e-3
    )


# ----------------------------------------------------------------------------------------------
# Through the CLI
# ----------------------------------------------------------------------------------------------
def test_hparams_lists_every_stylegan2_hyperparameter():
    result = run_cli("hparams", "stylegan2")
    assert result.returncode == 0, result.stderr
    for spec in StyleGAN2Config.hparams():
        assert spec.name in result.stdout or spec.flag in result.stdout, spec.name


@pytest.mark.slow
def test_cli_trains_on_the_bundled_sample_and_generates(tmp_path):
    prepared = tmp_path / "prepared"
    result = run_cli("prepare", "sample:pneumoniamnist", "--out", prepared, "--image-size", "32", "--quiet")
    assert result.returncode == 0, result.stderr
    run = tmp_path / "run"
    result = run_cli(
        "train",
        "stylegan2",
        "--data",
        prepared,
        "--out",
        run,
        "--cfg",
        "small",
        "--channel-max",
        "32",
        "--latent-dim",
        "32",
        "--w-dim",
        "32",
        "--conditional",
        "true",
        "--steps",
        "4",
        "--batch-size",
        "8",
        "--log-every",
        "2",
        "--augment",
        "ada",
        "--augment-p",
        "0.5",
        "--ada-kimg",
        "10",
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "augment_p" in output and "real_sign" in output
    assert (run / "model.keras").is_file() and list((run / "samples").glob("grid-*.png"))
    # The last tick's ADA p and heuristic E[sign(D(real))] are in run.json and in MLflow.
    last_tick = json.loads((run / "run.json").read_text())["last_tick"]
    assert -1 <= last_tick["real_sign"] <= 1 and last_tick["kimg"] == pytest.approx(0.032)
    with sqlite3.connect(run / "mlflow.db") as db:
        logged = {key for (key,) in db.execute("select distinct key from metrics")}
    assert {"real_sign", "augment_p"} <= logged
    config = json.loads((run / "config.json").read_text())
    assert config["model_config"]["cfg"] == "small" and config["training"]["batch_size"] == 8
    gan = load_gan(run / "model.keras")
    # ADA moved p once (after 4 steps of 8 images) by 32 / (ada_kimg * 1000).
    assert gan.conditional and abs(abs(float(gan.augment_probability.numpy()) - 0.5) - 32 / 10_000) < 1e-6
    assert last_tick["augment_p"] == pytest.approx(float(gan.augment_probability.numpy()))
    out = tmp_path / "synthetic"
    result = run_cli(
        "generate",
        run,
        "--n",
        "6",
        "--out",
        out,
        "--truncation",
        "0.7",
        "--noise-mode",
        "random",
        "--seed",
        "2",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert len(list(out.rglob("*.png"))) == 6


@needs_fixtures
@pytest.mark.slow
def test_cli_imports_a_pickle_generates_and_fine_tunes_from_it(tmp_path):
    from training_fixtures import make_prepared, tiny_images

    pkl = FIXTURES / "sg2ada-32px-rgb-cond3.pkl"
    imported = tmp_path / "imported"
    result = run_cli("import-weights", pkl, "--out", imported, "--channels", "1", "--class-names", "a,b,c")
    assert result.returncode == 0, result.stderr
    assert "3 classes" in result.stdout
    assert json.loads((imported / "run.json").read_text())["imported_from"]["file"] == pkl.name
    out = tmp_path / "generated"
    result = run_cli("generate", imported, "--n", "3", "--out", out, "--labels", "c", "--truncation", "0.7", "--quiet")
    assert result.returncode == 0, result.stderr
    assert len(list((out / "c").glob("*.png"))) == 3

    images, labels = tiny_images(24, 32)
    data = make_prepared(tmp_path / "data", images, labels % 2, ["x", "y"])
    run = tmp_path / "finetune"
    uncond = FIXTURES / "sg2ada-32px-gray-uncond.pkl"
    # The model takes the network's architecture (z/w 64, 2 mapping layers, widths) from the pickle.
    args = [
        "train",
        "stylegan2",
        "--data",
        data,
        "--init-from",
        uncond,
        "--freeze-d",
        "2",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--augment",
        "none",
    ]
    result = run_cli(*args, "--out", run)
    assert result.returncode == 0, result.stderr
    assert "none skipped" in result.stdout + result.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert json.loads((run / "config.json").read_text())["model_config"]["channel_max"] == 64
    # A resolution mismatch is one line, before any run folder exists.
    args[args.index(uncond)] = FIXTURES / "sg2ada-64px-gray-uncond.pkl"
    result = run_cli(*args, "--out", tmp_path / "never")
    assert result.returncode == 2 and "64 px" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_cli_fine_tunes_a_conditional_run_from_an_unconditional_one_with_freeze_d(tmp_path):
    """Transfer from unlabelled images: pretrain without labels, fine-tune class-conditional through the CLI."""
    from training_fixtures import make_prepared, tiny_images

    import ragan

    images, labels = tiny_images(32, 16)
    data = make_prepared(tmp_path / "data", images, labels, ["disc", "bar"])
    # One traced step function per run: no lazy regularisers.
    tiny_flags = {"latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16, "cfg": "small",
                  "r1_interval": 0, "pl_weight": 0.0}  # fmt: skip
    pretrained = ragan.train(
        "stylegan2", data=data, out=tmp_path / "pretrained", steps=1, batch_size=8, progress=False,
        config={**tiny_flags, "conditional": False, "augment": "none"},
    )  # fmt: skip
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in tiny_flags.items()]
    run = tmp_path / "finetuned"
    result = run_cli(
        "train", "stylegan2", "--data", data, "--out", run, *flags, "--conditional", "true",
        "--init-from", pretrained, "--freeze-d", "2", "--steps", "2", "--batch-size", "8",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "skipped" in output and "generator/mapping.fc0.weight (shape" not in output
    source, tuned = load_gan(pretrained / "model.keras"), load_gan(run / "model.keras")
    assert tuned.conditional and tuned.num_classes == 2 and not source.conditional
    # Freeze-D: the first two layers (b16 fromrgb, conv0) are the pretrained ones after fine-tuning; the next moved.
    for layer in ("fromrgb", "conv0"):
        mine, theirs = getattr(tuned.discriminator.blocks[0], layer), getattr(source.discriminator.blocks[0], layer)
        np.testing.assert_array_equal(mine.weight.numpy(), theirs.weight.numpy())
    assert (
        np.abs(
            tuned.discriminator.blocks[0].conv1.weight.numpy() - source.discriminator.blocks[0].conv1.weight.numpy()
        ).max()
        > 0
    )
    assert json.loads((run / "config.json").read_text())["init_from"] == str(pretrained)


MIRRORED_SCRIPT = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from ragan.models import StyleGAN2
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    config = {"cfg": "small", "latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16,
              "augment": "ada", "augment_p": 0.5, "ada_kimg": 10, "r1_interval": 2, "pl_interval": 2,
              "conditional": True}
    gan = StyleGAN2(config, image_size=16, num_classes=2)
    gan.compile()
images = np.random.default_rng(0).uniform(-1, 1, (40, 16, 16, 1)).astype("float32")
labels = (np.arange(40) % 2).astype("int32")
data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8, drop_remainder=True).repeat()
gan._distribute_strategy = None  # as ragan.train runs fit under a strategy
with strategy.scope():
    gan.fit(strategy.experimental_distribute_dataset(data), steps_per_epoch=5, epochs=1, verbose=0)
print("steps", int(gan.step_counter.numpy()), "g_updates", int(gan.g_optimizer.iterations.numpy()),
      "p", float(gan.augment_probability.numpy()), "pl_mean", float(gan.pl_mean.numpy()))
"""


@pytest.mark.slow
def test_trains_under_mirrored_strategy_with_lazy_regularisation_and_ada(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    words = result.stdout.split()
    values = dict(zip(words[::2], words[1::2]))
    # 5 steps, path-length steps at 0, 2 and 4; ADA moved p once, after 4 steps of 8 images.
    assert values["steps"] == "5" and values["g_updates"] == "8"
    assert abs(abs(float(values["p"]) - 0.5) - 32 / 10_000) < 1e-6 and float(values["pl_mean"]) > 0
