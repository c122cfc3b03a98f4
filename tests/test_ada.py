"""The ADA augmentation pipeline (ragan.layers.ada): exactness, statistics, gradients, controller."""

from __future__ import annotations

import numpy as np
import pytest

from ragan._tf import import_tf
from ragan.errors import RaganError
from ragan.layers import ADA_PIPELINES, ADA_TRANSFORMS, ada_adjust, ada_augment, parse_ada_pipeline
from ragan.layers import ada as ada_module

tf = import_tf()

BLIT = ("xflip", "rotate90", "xint")
GENERAL = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
SEED = tf.constant([3, 14])


def noise(n, size=16, channels=1, seed=0):
    """Distinct pixel values: every flip, rotation and shift of one of these images is unique."""
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype(np.float32)


def smooth(n, size=16, channels=1):
    """Low-frequency images, on which resampling filters neither blur nor ring noticeably."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    phases = np.arange(n * channels).reshape(n, 1, 1, channels)
    return (0.9 * np.sin(2 * np.pi * (xx[None, ..., None] + 0.7 * yy[None, ..., None]) + phases)).astype(np.float32)


def augment(images, p, pipeline, seed=SEED):
    return np.asarray(ada_augment(images, p, seed, pipeline=pipeline))


def test_pipeline_names_are_data_and_checked():
    assert parse_ada_pipeline("bgc") == ADA_TRANSFORMS
    assert parse_ada_pipeline("bg") == BLIT + GENERAL
    assert parse_ada_pipeline("c") == COLOR
    assert parse_ada_pipeline(("rotate90", "xflip")) == ("xflip", "rotate90")  # the paper's order
    assert parse_ada_pipeline("hue, xint") == ("xint", "hue")
    assert all(set(names) <= set(ADA_TRANSFORMS) for names in ADA_PIPELINES.values())
    with pytest.raises(RaganError, match="Did you mean 'rotate90'"):
        parse_ada_pipeline(("rotate9",))
    with pytest.raises(RaganError, match="empty"):
        parse_ada_pipeline(())
    with pytest.raises(RaganError, match="square"):
        ada_augment(np.zeros((2, 16, 8, 1), np.float32), 0.5, SEED)
    with pytest.raises(RaganError, match="1 or 3"):
        ada_augment(np.zeros((2, 16, 16, 2), np.float32), 0.5, SEED)
    with pytest.raises(RaganError, match="floating"):
        ada_augment(np.zeros((2, 16, 16, 1), np.uint8), 0.5, SEED)


def test_p_zero_is_the_identity_and_unpicked_images_are_untouched():
    images = noise(64, channels=3)
    assert np.array_equal(augment(images, 0.0, "bgc"), images)
    assert np.array_equal(augment(images, tf.constant(0.0), "bgc"), images)
    # (p = 0 inside a tf.function: see the dynamic-batch test.)
    # At a small p most images get no transform at all: those come out bit for bit the same.
    out = augment(images, 0.05, "bgc")
    unchanged = [np.array_equal(a, b) for a, b in zip(out, images)]
    assert 10 < sum(unchanged) < 64


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ADA_TRANSFORMS)
def test_each_transform_at_p1_keeps_shape_dtype_and_range(name, channels):
    images = smooth(8, channels=channels)
    out = augment(images, 1.0, (name,))
    assert out.shape == images.shape and out.dtype == np.float32 and np.isfinite(out).all()
    if channels == 1 and name in ("hue", "saturation"):
        assert np.array_equal(out, images)  # identities on luminance
        return
    assert not np.allclose(out, images)
    if name in BLIT:  # pixel permutations with mirroring: the same values
        assert set(np.unique(out)) <= set(np.unique(images))
    elif name in GENERAL:  # interpolation of smooth images stays within their range
        assert out.min() >= images.min() - 0.02 and out.max() <= images.max() + 0.02


def test_rotate90_is_exact():
    images = noise(32, size=16, channels=3)
    out = augment(images, 1.0, ("rotate90",))
    quarter_turns = []
    for before, after in zip(images, out):
        matches = [k for k in range(4) if np.array_equal(after, np.rot90(before, k))]
        assert len(matches) == 1
        quarter_turns.append(matches[0])
    assert set(quarter_turns) == {0, 1, 2, 3}


def test_xflip_is_exact_and_flips_half_the_picked_images():
    images = noise(400)
    for p, expected in ((1.0, 0.5), (0.5, 0.25)):  # picked with p, then mirrored with 1/2 (paper)
        out = augment(images, p, ("xflip",))
        flipped = np.array([np.array_equal(a, b[:, ::-1]) for a, b in zip(out, images)])
        kept = np.array([np.array_equal(a, b) for a, b in zip(out, images)])
        assert (flipped ^ kept).all()
        assert abs(flipped.mean() - expected) < 0.08


def test_integer_translation_matches_numpy_mirror_padding():
    size = 32
    images = noise(16, size=size)
    out = augment(images, 1.0, ("xint",))
    limit = round(0.125 * size)
    padded = np.pad(images, [(0, 0), (limit, limit), (limit, limit), (0, 0)], mode="symmetric")
    shifts = set()
    for index, after in enumerate(out):
        matches = [
            (dy, dx)
            for dy in range(-limit, limit + 1)
            for dx in range(-limit, limit + 1)
            if np.array_equal(after, padded[index, limit - dy : limit - dy + size, limit - dx : limit - dx + size])
        ]
        assert len(matches) == 1, index
        shifts.add(matches[0])
    assert len(shifts) > 8


def test_general_resampling_follows_the_same_pixel_convention_as_the_exact_path():
    size = 32
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    def wave(x, y):
        return np.sin(2 * np.pi * x / 13 + 0.3) * np.cos(2 * np.pi * y / 17)

    image = tf.constant(wave(xx, yy)[None].astype(np.float32))
    half_pixel = tf.constant([[[1, 0, -0.5], [0, 1, 0], [0, 0, 1]]], tf.float32)  # content moves +0.5 in x
    out = ada_module._general_resample(image, half_pixel).numpy()[0]
    np.testing.assert_allclose(out[4:-4, 4:-4], wave(xx - 0.5, yy)[4:-4, 4:-4], atol=5e-3)
    quarter_turn = tf.constant([[[0, -1, 0], [1, 0, 0], [0, 0, 1]]], tf.float32)
    out = ada_module._general_resample(image, quarter_turn).numpy()[0]
    np.testing.assert_allclose(out, np.rot90(image.numpy()[0]), atol=2e-2)


def test_matrix_and_convolution_filters_agree(monkeypatch):
    planes = tf.constant(noise(3, size=16)[..., 0])
    fine = tf.constant(noise(3, size=2 * 16 + 2 * ada_module._MARGIN)[..., 0])
    by_matrix = ada_module._upsample(planes), ada_module._downsample(fine)
    monkeypatch.setattr(ada_module, "_MATRIX_FILTER_MAX_SIZE", 0)
    by_convolution = ada_module._upsample(planes), ada_module._downsample(fine)
    for matrix_result, convolution_result in zip(by_matrix, by_convolution):
        np.testing.assert_allclose(matrix_result, convolution_result, atol=1e-5)


def test_same_seed_same_output_other_seed_other_output():
    images = noise(8, channels=3)
    first = augment(images, 0.7, "bgc", seed=tf.constant([5, 6]))
    assert np.array_equal(first, augment(images, 0.7, "bgc", seed=tf.constant([5, 6])))
    assert not np.allclose(first, augment(images, 0.7, "bgc", seed=tf.constant([5, 7])))
    # A transform's draws do not depend on which others are enabled.
    flip_only = augment(images, 1.0, ("xflip",))
    offset = augment(images, 1.0, ("xflip", "brightness")) - flip_only  # same flips, plus a brightness
    per_image = np.broadcast_to(offset.mean(axis=(1, 2, 3), keepdims=True), offset.shape)
    np.testing.assert_allclose(offset, per_image, atol=1e-6)


def test_gradients_flow_to_the_images_and_are_the_exact_adjoint():
    images = tf.constant(noise(8, channels=3))
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = ada_augment(images, 1.0, SEED)
        loss = tf.reduce_sum(out * tf.constant(noise(8, channels=3, seed=1)))
    grad = tape.gradient(loss, images).numpy()
    assert np.isfinite(grad).all() and (np.abs(grad) > 0).mean() > 0.5
    # The geometric part is linear in the images: <A x, y> == <x, A^T y> with A^T from autodiff.
    x, y = tf.constant(noise(8, seed=2)), tf.constant(noise(8, seed=3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        ax = ada_augment(x, 1.0, SEED, pipeline="bg")
    at_y = tape.gradient(ax, x, output_gradients=y)
    np.testing.assert_allclose(tf.reduce_sum(ax * y).numpy(), tf.reduce_sum(x * at_y).numpy(), rtol=1e-4)


def test_gradients_are_reproducible_bit_for_bit():
    """Exact resume needs it; a float bincount or scatter adds in a thread-dependent order."""
    images = tf.constant(noise(16, size=64))

    def gradient():
        with tf.GradientTape() as tape:
            tape.watch(images)
            out = ada_augment(images, 1.0, SEED)
        return tape.gradient(out, images, output_gradients=tf.sin(3 * out)).numpy()

    first = gradient()
    assert all(np.array_equal(first, gradient()) for _ in range(3))


def test_second_order_gradients_for_r1_through_the_augmentation():
    kernel = tf.Variable(tf.random.stateless_normal([3, 3, 1, 1], seed=[1, 2]))
    reals = tf.constant(noise(4))
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            inner.watch(reals)
            logits = tf.reduce_sum(tf.nn.conv2d(ada_augment(reals, 1.0, SEED), kernel, 1, "SAME") ** 2)
        penalty = tf.reduce_sum(inner.gradient(logits, reals) ** 2)
    grad = outer.gradient(penalty, kernel).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


def test_ada_adjust_follows_the_hand_computed_trajectory():
    # 100 images per adjustment at ada_kimg = 1: steps of 0.1.
    signs = [0.9, 0.9, 0.7, 0.2, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0]
    expected = [0.1, 0.2, 0.3, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 0.9]
    p = 0.0
    trajectory = []
    for sign in signs:
        p = float(ada_adjust(p, sign, images_since_last=100, ada_kimg=1))
        trajectory.append(p)
    np.testing.assert_allclose(trajectory, expected, atol=1e-6)
    assert float(ada_adjust(0.0, -0.5, images_since_last=100, ada_kimg=1)) == 0.0
    # Inside a tf.function on a variable, as a train_step uses it (the official 4 x 32 images).
    variable = tf.Variable(0.5)

    @tf.function
    def step(sign_mean):
        variable.assign(ada_adjust(variable, sign_mean, target=0.6, images_since_last=tf.constant(128)))

    step(tf.constant(0.8))
    step(tf.constant(0.8))
    step(tf.constant(0.1))
    assert float(variable) == pytest.approx(0.5 + 128 / 500_000)
    with pytest.raises(RaganError, match="ada_kimg"):
        ada_adjust(0.5, 0.7, images_since_last=32, ada_kimg=0)


def test_dynamic_batch_inside_tf_function_matches_eager_and_p_zero_is_the_identity_there():
    p = tf.Variable(0.6)

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3]), tf.TensorSpec([2], tf.int32)])
    def graph(images, seed):
        return ada_augment(images, p, seed)

    for n in (3, 8):
        images = noise(n, channels=3)
        out = graph(images, SEED).numpy()
        assert out.shape == images.shape
        # Graph rewrites may reorder float operations.
        np.testing.assert_allclose(out, augment(images, p, "bgc"), rtol=1e-4, atol=1e-5)
    p.assign(0.0)
    assert np.array_equal(graph(images, SEED).numpy(), images)


def test_colour_transforms_on_luminance_and_rgb():
    grey = noise(16)
    flipped = augment(grey, 1.0, ("lumaflip",))
    negated = [np.array_equal(a, -b) for a, b in zip(flipped, grey)]
    assert all(n or np.array_equal(a, b) for n, a, b in zip(negated, flipped, grey)) and 0 < sum(negated) < 16
    brighter = augment(grey, 1.0, ("brightness",)) - grey  # a constant offset per image
    np.testing.assert_allclose(
        brighter, np.broadcast_to(brighter.mean(axis=(1, 2, 3), keepdims=True), brighter.shape), atol=1e-6
    )
    rgb = noise(16, channels=3)
    for name in ("hue", "saturation"):  # move colours around the luma axis, keep the luma
        out = augment(rgb, 1.0, (name,))
        np.testing.assert_allclose(out.mean(axis=-1), rgb.mean(axis=-1), atol=1e-5)
        assert not np.allclose(out, rgb)
    flipped = augment(rgb, 1.0, ("lumaflip",))
    chroma = rgb - rgb.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(flipped - flipped.mean(axis=-1, keepdims=True), chroma, atol=1e-5)


def test_works_under_tf_distribute():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        p = tf.Variable(0.8)
    images = noise(4)

    @tf.function
    def run():
        return strategy.run(lambda x: ada_augment(x, p, SEED), args=(tf.constant(images),))

    out = strategy.experimental_local_results(run())[0].numpy()
    np.testing.assert_allclose(out, augment(images, 0.8, "bgc"), rtol=1e-4, atol=1e-5)


def test_second_order_gradients_inside_tf_function():
    """R1 through the augmentation: the gradient of a gradient, in a compiled step (as in training)."""
    images = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32))
    weights = tf.Variable(tf.ones([16, 16, 1]))

    @tf.function
    def penalty_gradient():
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(images)
                total = tf.reduce_sum(tf.square(ada_augment(images, 1.0, tf.constant([1, 2]))) * weights)
            penalty = tf.reduce_sum(tf.square(inner.gradient(total, images)))
        return outer.gradient(penalty, weights)

    gradient = penalty_gradient().numpy()
    assert gradient.shape == (16, 16, 1) and np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0
