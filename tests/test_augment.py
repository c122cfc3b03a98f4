"""Differentiable augmentation (DiffAugment transforms, per-image probability, ADA controller)."""

from __future__ import annotations

import numpy as np
import pytest

from ragan._tf import import_tf
from ragan.errors import RaganError
from ragan.layers import (
    ada_update,
    diff_augment,
    parse_augment_policy,
    random_color,
    random_cutout,
    random_translation,
)

tf = import_tf()


def dot_images(n, size=16, at=(8, 8)):
    """Black images with one white pixel: its position after a transform reveals the shift."""
    images = np.zeros((n, size, size, 1), np.float32)
    images[:, at[0], at[1], 0] = 1.0
    return images


def test_policy_parsing_and_errors():
    assert parse_augment_policy("color, translation,cutout") == ("color", "translation", "cutout")
    assert parse_augment_policy(["cutout", "cutout"]) == ("cutout",)
    with pytest.raises(RaganError, match="Did you mean 'translation'"):
        parse_augment_policy("color,translaton")
    with pytest.raises(RaganError, match="empty"):
        parse_augment_policy(" , ")


def test_translation_shifts_each_image_by_at_most_an_eighth_with_zero_fill():
    images = dot_images(64)
    shifted = np.asarray(random_translation(images, seed=1))
    assert shifted.shape == images.shape
    shifts = set()
    for image in shifted:
        ys, xs = np.nonzero(image[..., 0])
        assert len(ys) == 1 and image.sum() == 1.0  # moved, not blurred
        dy, dx = ys[0] - 8, xs[0] - 8
        assert abs(dy) <= 2 and abs(dx) <= 2  # 16 px * 0.125
        shifts.add((dy, dx))
    assert len(shifts) > 10  # per-image randomness
    # Content shifted out of the frame leaves zeros, not wrapped pixels.
    edge = dot_images(64, at=(0, 0))
    moved = np.asarray(random_translation(edge, seed=2))
    assert set(np.unique(moved.sum(axis=(1, 2, 3)))) <= {0.0, 1.0} and (moved.sum(axis=(1, 2, 3)) == 0).any()


def test_cutout_zeroes_one_square_per_image():
    images = np.ones((32, 16, 16, 1), np.float32)
    out = np.asarray(random_cutout(images, seed=3))
    for image in out[..., 0]:
        rows, cols = np.nonzero(image == 0)
        assert len(rows) > 0
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert height <= 8 and width <= 8  # half the side
        assert len(rows) == height * width  # a filled rectangle (clipped at the border)
        assert set(np.unique(image)) == {0.0, 1.0}


def test_color_is_a_per_image_affine_map_on_grey_images():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(8, 16, 16, 1)).astype(np.float32)
    out = np.asarray(random_color(images, seed=4))
    slopes = []
    for before, after in zip(images.ravel().reshape(8, -1), out.reshape(8, -1)):
        slope, intercept = np.polyfit(before, after, 1)
        np.testing.assert_allclose(after, slope * before + intercept, atol=1e-4)
        assert 0.5 - 1e-4 <= slope <= 1.5 + 1e-4  # contrast factor
        slopes.append(slope)
    assert np.std(slopes) > 0.05


def test_color_changes_saturation_of_rgb_images():
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, size=(16, 8, 8, 3)).astype(np.float32)
    out = np.asarray(random_color(images, seed=5))
    spread_before = images.std(axis=3).mean(axis=(1, 2))
    spread_after = out.std(axis=3).mean(axis=(1, 2))
    ratios = spread_after / spread_before
    assert ratios.min() < 0.7 and ratios.max() > 1.3  # saturation x U[0, 2) (times contrast)


def test_diff_augment_probability_and_determinism():
    images = np.random.default_rng(2).uniform(-1, 1, size=(400, 16, 16, 1)).astype(np.float32)
    untouched = lambda out: np.all(np.asarray(out) == images, axis=(1, 2, 3))  # noqa: E731
    assert untouched(diff_augment(images, probability=0.0, seed=1)).all()
    assert not untouched(diff_augment(images, probability=1.0, seed=1)).any()
    # Each of the 3 transforms is applied with p = 0.5 independently: (1 - p)^3 = 1/8 untouched.
    fraction = untouched(diff_augment(images, probability=tf.constant(0.5), seed=1)).mean()
    assert 0.08 < fraction < 0.18
    first = np.asarray(diff_augment(images[:8], seed=tf.constant([5, 6], tf.int64)))
    np.testing.assert_array_equal(first, np.asarray(diff_augment(images[:8], seed=tf.constant([5, 6], tf.int64))))
    assert not np.array_equal(first, np.asarray(diff_augment(images[:8], seed=tf.constant([5, 7], tf.int64))))


def test_diff_augment_is_differentiable():
    images = tf.Variable(np.random.default_rng(3).uniform(-1, 1, size=(4, 16, 16, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        out = diff_augment(images, seed=9)
        total = tf.reduce_sum(out * out)
    gradient = tape.gradient(total, images)
    assert gradient is not None and np.abs(np.asarray(gradient)).sum() > 0
    assert np.all(np.isfinite(np.asarray(gradient)))


def test_ada_controller_moves_toward_the_target():
    assert float(ada_update(0.5, 0.9, target=0.6, step=0.01)) == pytest.approx(0.51)
    assert float(ada_update(0.5, 0.2, target=0.6, step=0.01)) == pytest.approx(0.49)
    assert float(ada_update(0.0, -1.0, target=0.6, step=0.01)) == 0.0
    assert float(ada_update(0.999, 1.0, target=0.6, step=0.01)) == 1.0
