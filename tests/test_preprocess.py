"""Tests for ragan.data.preprocess: geometry, channels, bit depth, resampling quality."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ragan.data.preprocess import RESIZE_MODES, preprocess_frame, to_luma, validate_options
from ragan.data.readers import read_file
from ragan.errors import RaganError
from tests import filemakers as fm


def _bar_image(height=40, width=80, bar_columns=6) -> np.ndarray:
    """Black landscape image with a bright bar along its left border."""
    pixels = np.zeros((height, width, 1), np.float32)
    pixels[:, :bar_columns] = 1.0
    return pixels


@pytest.mark.parametrize("resize_mode", RESIZE_MODES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_output_shape_and_dtype(resize_mode, channels, bit_depth):
    rng = np.random.default_rng(0)
    for source_channels in (1, 3):
        pixels = rng.random((30, 50, source_channels), dtype=np.float32)
        out = preprocess_frame(pixels, image_size=16, channels=channels, bit_depth=bit_depth, resize_mode=resize_mode)
        assert out.shape == (16, 16, channels)
        assert out.dtype == (np.uint8 if bit_depth == 8 else np.uint16)


def test_crop_cuts_the_border_bar_and_pad_keeps_it():
    pixels = _bar_image()
    crop = preprocess_frame(pixels, image_size=32, channels=1, bit_depth=8, resize_mode="crop")[..., 0]
    pad = preprocess_frame(pixels, image_size=32, channels=1, bit_depth=8, resize_mode="pad")[..., 0]
    stretch = preprocess_frame(pixels, image_size=32, channels=1, bit_depth=8, resize_mode="stretch")[..., 0]
    assert crop.max() == 0  # the centre 40x40 square (columns 20..59) holds no bar
    # pad: 80x40 becomes 32x16, centred: rows 8..23 hold the image, the rest is black padding
    assert pad[:8].max() == 0 and pad[24:].max() == 0
    assert pad[8:24, 0].min() > 200 and pad[8:24, 4:].max() < 40
    # stretch: the bar (6/80 of the width) spans the full height at the left edge
    assert stretch[:, 0].min() > 200 and stretch[:, 6:].max() < 40


def test_crop_takes_the_centre_of_a_tall_image():
    pixels = np.zeros((90, 30, 1), np.float32)
    pixels[30:60] = 1.0  # the centred 30x30 square is all white
    out = preprocess_frame(pixels, image_size=30, channels=1, bit_depth=8, resize_mode="crop")
    assert out.min() == 255


def test_rgb_to_one_channel_matches_pillow_luma():
    rng = np.random.default_rng(1)
    rgb8 = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    out = preprocess_frame(rgb8.astype(np.float32) / 255, image_size=12, channels=1, bit_depth=8)[..., 0]
    reference = np.asarray(Image.fromarray(rgb8).convert("L"), dtype=np.int16)
    assert np.abs(out.astype(np.int16) - reference).max() <= 1
    assert to_luma(np.array([[[1.0, 0.0, 0.0]]], np.float32))[0, 0] == pytest.approx(0.299)


def test_one_channel_to_three_repeats():
    pixels = fm.gradient(8, 8)[..., None].astype(np.float32) / 255
    out = preprocess_frame(pixels, image_size=8, channels=3, bit_depth=8)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    np.testing.assert_array_equal(out[..., 0], fm.gradient(8, 8))


def test_sixteen_bit_precision_survives_downscaling(tmp_path):
    values = np.full((64, 64), 1000, np.uint16)
    values[:, 32:] = 1001
    frame = read_file(fm.write_png16(tmp_path, "ct16.png", values))[0]
    out16 = preprocess_frame(frame.pixels, image_size=16, channels=1, bit_depth=16, resize_mode="stretch")[..., 0]
    assert out16.dtype == np.uint16
    assert np.all(out16[:, :3] == 1000) and np.all(out16[:, -3:] == 1001)
    # the same data at 8 bits cannot tell them apart (both round to 4): why 16-bit output exists
    out8 = preprocess_frame(frame.pixels, image_size=16, channels=1, bit_depth=8, resize_mode="stretch")[..., 0]
    assert np.all(out8 == 4)


def test_downscaling_is_antialiased():
    checkerboard = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)[..., None]
    out = preprocess_frame(checkerboard, image_size=16, channels=1, bit_depth=8, resize_mode="stretch")
    # a fine pattern must average to mid-grey, not alias into black/white blocks
    assert np.abs(out.astype(int) - 128).max() <= 2


def test_upscaling_is_smooth_and_clipped():
    pixels = np.zeros((4, 4, 1), np.float32)
    pixels[:, 2:] = 1.0
    out = preprocess_frame(pixels, image_size=16, channels=1, bit_depth=8)[..., 0]
    assert out.shape == (16, 16)
    row = out[8].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row[3:13]) >= 0) and 0 < row[8] < 255  # a ramp, not a hard step
    # bicubic overshoot was clipped, not wrapped around
    assert out.min() == 0 and out.max() == 255


def test_deterministic_and_integer_input_accepted():
    rng = np.random.default_rng(2)
    rgb8 = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    first = preprocess_frame(rgb8.astype(np.float32) / 255, image_size=16, channels=3, bit_depth=8, resize_mode="pad")
    second = preprocess_frame(rgb8.astype(np.float32) / 255, image_size=16, channels=3, bit_depth=8, resize_mode="pad")
    np.testing.assert_array_equal(first, second)
    from_uint8 = preprocess_frame(rgb8, image_size=16, channels=3, bit_depth=8, resize_mode="pad")
    np.testing.assert_array_equal(first, from_uint8)


def test_real_brain_mri_matches_a_plain_pillow_pipeline(brain_mri_dir):
    path = brain_mri_dir / "Training" / "glioma_tumor" / "gg (1).jpg"
    frame = read_file(path)[0]
    ours = preprocess_frame(frame.pixels, image_size=64, channels=1, bit_depth=8, resize_mode="crop")[..., 0]
    with Image.open(path) as image:
        grey = image.convert("L")
        side = min(grey.size)
        left, top = (grey.width - side) // 2, (grey.height - side) // 2
        square = grey.crop((left, top, left + side, top + side))
        reference = np.asarray(square.resize((64, 64), Image.Resampling.LANCZOS))
    difference = np.abs(ours.astype(int) - reference.astype(int))
    assert difference.mean() < 1.0 and difference.max() <= 8


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"image_size": 3}, "image_size=3 is not allowed"),
        ({"image_size": 5000}, "image_size=5000"),
        ({"image_size": 64.0}, "image_size=64.0"),
        ({"image_size": True}, "image_size=True"),
        ({"channels": 2}, "channels=2 is not allowed; choose one of 1, 3"),
        ({"bit_depth": 12}, "bit_depth=12"),
        ({"resize_mode": "cropp"}, "Did you mean 'crop'?"),
    ],
)
def test_validate_options_names_the_bad_value(options, fragment):
    arguments = {"image_size": 64, "channels": 1, "bit_depth": 8, "resize_mode": "crop", **options}
    with pytest.raises(RaganError) as caught:
        validate_options(**arguments)
    assert fragment in str(caught.value)
    with pytest.raises(RaganError):
        preprocess_frame(np.zeros((8, 8, 1), np.float32), **arguments)


def test_validate_options_accepts_the_allowed_values():
    for size in (4, 64, np.int64(128), 4096):
        for resize_mode in RESIZE_MODES:
            validate_options(size, 3, 16, resize_mode)


def test_bad_pixels_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        preprocess_frame(np.full((8, 8, 1), np.nan, np.float32), image_size=4, channels=1, bit_depth=8)
    with pytest.raises(ValueError, match="shape"):
        preprocess_frame(np.zeros((8, 8, 2), np.float32), image_size=4, channels=1, bit_depth=8)
    with pytest.raises(ValueError, match="dtype"):
        preprocess_frame(np.zeros((8, 8, 1), np.int32), image_size=4, channels=1, bit_depth=8)
