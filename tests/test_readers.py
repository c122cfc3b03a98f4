"""Tests for ragan.data.readers on real files written by tests/filemakers.py and pydicom's test data."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections import Counter

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_windowing

from ragan.data.readers import (
    DICOM_WINDOW_PRESETS,
    DicomWindow,
    ImageReadError,
    array_to_frame,
    parse_dicom_window,
    read_file,
    read_patient_id,
    scan_folder,
)
from ragan.errors import RaganError
from tests import filemakers as fm

# --------------------------------------------------------------------------- Pillow modes

# mode written -> (file extension, channels after reading, source bits)
MODES = {
    "1": ("png", 1, 8),
    "L": ("png", 1, 8),
    "LA": ("png", 1, 8),
    "RGB": ("png", 3, 8),
    "RGBA": ("png", 3, 8),
    "P": ("png", 1, 8),
    "P-colour": ("png", 3, 8),
    "P-transparent": ("png", 3, 8),
    "CMYK": ("tif", 3, 8),
    "I;16": ("png", 1, 16),
    "I;16B": ("tif", 1, 16),
    "I": ("tif", 1, 16),
    "F": ("tif", 1, 16),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_reads_as_float_in_unit_range(tmp_path, mode):
    extension, channels, bits = MODES[mode]
    path = fm.write_mode_image(tmp_path, f"image.{extension}", mode, height=16, width=24)
    frames = read_file(path)
    assert len(frames) == 1
    pixels = frames[0].pixels
    assert pixels.dtype == np.float32
    assert pixels.shape == (16, 24, channels)
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    assert pixels.max() > 0.5  # the content is there, not an all-black image
    assert frames[0].source_bits == bits
    assert frames[0].patient_id is None


@pytest.mark.parametrize("mode", ["L", "I;16", "I;16B", "I", "F"])
def test_greyscale_values_match_the_stored_ramp(tmp_path, mode):
    extension = MODES[mode][0]
    path = fm.write_mode_image(tmp_path, f"ramp.{extension}", mode)
    maximum = 255 if mode == "L" else 65535
    expected = fm.gradient(16, 24, maximum, np.float64) / maximum if mode != "F" else fm.gradient(16, 24, 1, np.float32)
    np.testing.assert_allclose(read_file(path)[0].pixels[..., 0], expected, atol=1e-6)


def test_rgb_values_and_channel_order(tmp_path):
    path = fm.write_mode_image(tmp_path, "rgb.png", "RGB")
    pixels = read_file(path)[0].pixels
    grey = fm.gradient(16, 24) / 255
    np.testing.assert_allclose(pixels[..., 0], grey, atol=1e-6)
    np.testing.assert_allclose(pixels[..., 1], 1 - grey, atol=1e-6)
    np.testing.assert_allclose(pixels[..., 2], 77 / 255, atol=1e-6)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_composited_on_black(tmp_path, mode):
    path = fm.write_mode_image(tmp_path, "alpha.png", mode)
    pixels = read_file(path)[0].pixels
    # filemakers makes the top-left quarter fully transparent, the rest opaque.
    assert np.all(pixels[:8, :12] == 0.0)
    np.testing.assert_allclose(pixels[8:, :, 0], fm.gradient(16, 24)[8:] / 255, atol=1e-6)


def test_transparent_palette_index_becomes_black(tmp_path):
    path = fm.write_mode_image(tmp_path, "p.png", "P-transparent")
    pixels = read_file(path)[0].pixels
    index = fm.gradient(16, 24) // 16
    assert np.all(pixels[index == 0] == 0.0)
    # index i has colour (17 i, 0, 255 - 17 i)
    np.testing.assert_allclose(pixels[index == 5][:, 0], 85 / 255, atol=1e-6)
    np.testing.assert_allclose(pixels[index == 5][:, 2], 170 / 255, atol=1e-6)


def test_mode_1_is_black_and_white(tmp_path):
    path = fm.write_mode_image(tmp_path, "bw.png", "1")
    pixels = read_file(path)[0].pixels[..., 0]
    assert set(np.unique(pixels)) == {0.0, 1.0}
    np.testing.assert_array_equal(pixels == 1.0, fm.gradient(16, 24) > 127)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    path = fm.write_mode_image(tmp_path, "cmyk.jpg", "CMYK")
    assert Image.open(path).mode == "CMYK"
    pixels = read_file(path)[0].pixels
    assert pixels.shape == (16, 24, 3)
    # blue channel is a constant 77 in the source; JPEG is lossy, so allow a margin
    assert abs(float(np.median(pixels[..., 2])) - 77 / 255) < 0.05


def test_sixteen_bit_values_1000_and_1001_stay_distinct(tmp_path):
    values = np.full((8, 8), 1000, np.uint16)
    values[:, 4:] = 1001
    for path in (
        fm.write_png16(tmp_path, "a.png", values),
        fm.write_tiff16(tmp_path, "a.tif", values),
        fm.write_tiff16(tmp_path, "b.tif", values, big_endian=True),
    ):
        frame = read_file(path)[0]
        assert frame.source_bits == 16
        np.testing.assert_array_equal(np.rint(frame.pixels[..., 0] * 65535).astype(np.uint16), values)
        assert frame.pixels[0, 0, 0] < frame.pixels[0, 7, 0]


def test_exif_orientation_is_applied(tmp_path):
    path = fm.write_exif_rotated_jpeg(tmp_path, "rotated.jpg", height=8, width=16)
    pixels = read_file(path)[0].pixels[..., 0]
    assert pixels.shape == (16, 8)  # portrait after the 90° turn
    assert pixels[:6].mean() > 0.9 and pixels[-6:].mean() < 0.1  # the white half is now on top


def test_multipage_tiff_gives_one_frame_per_page(tmp_path):
    pages = [np.full((6, 5), value, np.uint8) for value in (10, 128, 250)]
    frames = read_file(fm.write_multipage_tiff(tmp_path, "stack.tif", pages))
    assert [round(float(f.pixels.mean()) * 255) for f in frames] == [10, 128, 250]


def test_odd_file_names(tmp_path):
    path = fm.write_mode_image(tmp_path, "chest x-ray ü (1).png", "L")
    assert read_file(path)[0].pixels.shape == (16, 24, 1)


def test_bytes_from_a_zip_member_read_like_the_file(tmp_path):
    path = fm.write_mode_image(tmp_path, "member.png", "RGB")
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.write(path, "class_a/member.png")
    with zipfile.ZipFile(archive) as zipped:
        data = zipped.read("class_a/member.png")
    from_zip = read_file("class_a/member.png", data=data)[0].pixels
    np.testing.assert_array_equal(from_zip, read_file(path)[0].pixels)


# --------------------------------------------------------------------------- bad files


def _reason(path, **kwargs) -> str:
    with pytest.raises(ImageReadError) as caught:
        read_file(path, **kwargs)
    return str(caught.value)


def test_empty_file(tmp_path):
    assert _reason(fm.write_empty(tmp_path, "empty.png")) == "empty file (0 bytes)"
    assert _reason(fm.write_empty(tmp_path, "empty.dcm")) == "empty file (0 bytes)"


@pytest.mark.parametrize("name", ["cut.png", "cut.jpg", "cut.tif", "cut.bmp"])
def test_truncated_images(tmp_path, name):
    assert _reason(fm.write_truncated(tmp_path, name, keep_fraction=0.5)).startswith("truncated image")


def test_header_only_png_is_truncated_not_unknown(tmp_path):
    assert _reason(fm.write_truncated(tmp_path, "stub.png", keep_fraction=0.004)).startswith("truncated image")


def test_text_file_named_png(tmp_path):
    assert _reason(fm.write_text_as_image(tmp_path, "notes.png")) == "not an image (unrecognised format)"


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    global_limit = Image.MAX_IMAGE_PIXELS
    reason = _reason(fm.write_png_bomb(tmp_path, "bomb.png", 30000, 30000))
    assert reason == "decompression bomb: 30000x30000 pixels exceeds the limit of 178956970"
    # Between the limit and twice the limit Pillow only warns; that must be refused too.
    path = fm.write_mode_image(tmp_path, "ok.png", "L", height=100, width=100)
    assert _reason(path, max_pixels=6_000) == "decompression bomb: 100x100 pixels exceeds the limit of 6000"
    assert read_file(path, max_pixels=10_000)[0].pixels.shape == (100, 100, 1)
    assert Image.MAX_IMAGE_PIXELS == global_limit  # Pillow's global limit is restored


def test_missing_file(tmp_path):
    assert _reason(tmp_path / "nope.png") == "file not found"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read files with mode 000")
def test_unreadable_file(tmp_path):
    path = fm.write_unreadable(tmp_path, "locked.png")
    try:
        assert _reason(path) == "permission denied"
    finally:
        os.chmod(path, 0o644)


def test_permission_error_is_reported_even_when_running_as_root(tmp_path, monkeypatch):
    path = fm.write_mode_image(tmp_path, "locked.png", "L")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("ragan.data.readers.open", refuse, raising=False)
    assert _reason(path) == "permission denied"


# --------------------------------------------------------------------------- DICOM


def _dataset(path):
    return pydicom.dcmread(path)


def test_ct_rescale_then_minmax_when_no_window(tmp_path):
    path = fm.write_dicom_copy(tmp_path, "ct.dcm", "CT_small.dcm")
    dataset = _dataset(path)
    assert "WindowCenter" not in dataset  # CT_small has no window, so "auto" means min-max
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    expected = (hounsfield - hounsfield.min()) / (hounsfield.max() - hounsfield.min())
    frame = read_file(path)[0]
    assert frame.pixels.shape == (128, 128, 1) and frame.source_bits == 16
    np.testing.assert_allclose(frame.pixels[..., 0], expected, atol=1e-6)


def test_ct_explicit_window_matches_the_dicom_formula_and_pydicom(tmp_path):
    path = fm.write_dicom_copy(tmp_path, "ct.dcm", "CT_small.dcm")
    dataset = _dataset(path)
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    center, width = 40.0, 400.0
    # PS3.3 C.11.2.1.2.1, LINEAR: ((x - (c - 0.5)) / (w - 1) + 0.5), clipped
    by_hand = np.clip((hounsfield - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    frame = read_file(path, window=DicomWindow(center, width))[0]
    np.testing.assert_allclose(frame.pixels[..., 0], by_hand, atol=1e-6)
    assert 0 < (frame.pixels == 0).mean() < 1 and (frame.pixels == 1).any()  # the window really clips

    # pydicom's own implementation (output in the stored range) as an independent reference
    dataset.WindowCenter, dataset.WindowWidth = center, width
    reference = apply_windowing(apply_modality_lut(dataset.pixel_array, dataset), dataset)
    low = -(2**15) * 1 - 1024  # the stored range of signed 16 bits after rescale
    high = (2**15 - 1) * 1 - 1024
    np.testing.assert_allclose(frame.pixels[..., 0], (reference - low) / (high - low), atol=1e-5)

    # the same window by preset-like string, and from the file's own tags with window="auto"
    np.testing.assert_array_equal(read_file(path, window="40,400")[0].pixels, frame.pixels)
    tagged = fm.write_dicom_copy(
        tmp_path, "tagged.dcm", "CT_small.dcm", WindowCenter=[40, 400], WindowWidth=[400, 2000]
    )
    np.testing.assert_array_equal(read_file(tagged)[0].pixels, frame.pixels)  # first value of multi-valued tags


def test_mr_uses_its_own_window_tags(tmp_path):
    path = fm.write_dicom_copy(tmp_path, "mr.dcm", "MR_small.dcm")
    dataset = _dataset(path)
    center, width = float(dataset.WindowCenter), float(dataset.WindowWidth)
    assert "RescaleSlope" not in dataset
    values = dataset.pixel_array.astype(np.float64)
    expected = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    np.testing.assert_allclose(read_file(path)[0].pixels[..., 0], expected, atol=1e-6)
    # "minmax" ignores the tags
    minmax = (values - values.min()) / (values.max() - values.min())
    np.testing.assert_allclose(read_file(path, window="minmax")[0].pixels[..., 0], minmax, atol=1e-6)


def test_window_none_uses_the_full_stored_range(tmp_path):
    path = fm.write_dicom_copy(tmp_path, "ct.dcm", "CT_small.dcm")
    dataset = _dataset(path)
    assert dataset.BitsStored == 16 and dataset.PixelRepresentation == 1
    hounsfield = dataset.pixel_array * 1.0 - 1024.0
    low, high = -32768.0 - 1024.0, 32767.0 - 1024.0
    expected = (hounsfield - low) / (high - low)
    np.testing.assert_allclose(read_file(path, window=None)[0].pixels[..., 0], expected, atol=1e-6)


def test_monochrome1_is_inverted(tmp_path):
    normal = read_file(fm.write_dicom_copy(tmp_path, "m2.dcm", "CT_small.dcm"))[0].pixels
    inverted = read_file(fm.write_monochrome1_dicom(tmp_path, "m1.dcm", "CT_small.dcm"))[0].pixels
    np.testing.assert_allclose(inverted, 1.0 - normal, atol=1e-6)
    assert not np.allclose(inverted, normal)


def test_multiframe_dicom_gives_one_frame_each():
    frames = read_file(get_testdata_file("rtdose.dcm"))
    dataset = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    assert len(frames) == int(dataset.NumberOfFrames) == 15
    assert all(f.pixels.shape == (10, 10, 1) for f in frames)
    colour = read_file(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    assert len(colour) == 2 and colour[0].pixels.shape == (100, 100, 3)


def test_enhanced_multiframe_uses_per_frame_rescale(tmp_path):
    path = fm.write_enhanced_multiframe_dicom(tmp_path, "enhanced.dcm", slopes=(1.0, 2.0), intercepts=(-1024.0, -100.0))
    stored = pydicom.dcmread(path).pixel_array[0].astype(np.float64)
    first, second = read_file(path, window=DicomWindow(0.0, 1000.0))
    for frame, (slope, intercept) in zip((first, second), ((1.0, -1024.0), (2.0, -100.0))):
        values = stored * slope + intercept
        expected = np.clip((values - (0.0 - 0.5)) / (1000.0 - 1) + 0.5, 0, 1)
        np.testing.assert_allclose(frame.pixels[..., 0], expected, atol=1e-6)
    assert first.patient_id == fm.PATIENT_ID


def test_rgb_and_ybr_dicom_give_three_channels():
    path = get_testdata_file("SC_rgb_small_odd.dcm")
    frame = read_file(path)[0]
    np.testing.assert_allclose(frame.pixels, pydicom.dcmread(path).pixel_array / 255.0, atol=1e-6)
    assert frame.source_bits == 8
    ybr = read_file(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))[0]
    assert ybr.pixels.shape == (100, 100, 3)
    sixteen = read_file(get_testdata_file("SC_rgb_rle_16bit.dcm"))[0]
    assert sixteen.source_bits == 16 and sixteen.pixels.max() == 1.0


def test_patient_id_is_returned_but_only_from_dicom(tmp_path):
    path = fm.write_dicom_copy(tmp_path, "p.dcm", "MR_small.dcm", patient_id="PAT-7")
    assert read_file(path)[0].patient_id == "PAT-7"
    assert read_patient_id(path) == "PAT-7"
    assert read_patient_id(fm.write_dicom_copy(tmp_path, "anon.dcm", "MR_small.dcm", patient_id="")) is None
    assert read_patient_id(fm.write_mode_image(tmp_path, "x.png", "L")) is None
    # a DICOM file named without an extension is recognised by its 'DICM' marker
    bare = tmp_path / "IM000001"
    bare.write_bytes(path.read_bytes())
    assert read_patient_id(bare) == "PAT-7"
    assert read_file(bare)[0].pixels.shape == (64, 64, 1)


def test_dicom_bytes_with_an_image_extension_fall_back_to_dicom(tmp_path):
    data = fm.write_dicom_copy(tmp_path, "p.dcm", "MR_small.dcm").read_bytes()
    assert read_file("misnamed.png", data=data)[0].pixels.shape == (64, 64, 1)


def test_bad_dicom_files(tmp_path):
    assert _reason(get_testdata_file("rtplan.dcm")) == "DICOM has no pixel data"
    assert _reason(get_testdata_file("MR_truncated.dcm")) == "truncated DICOM pixel data"
    reason = _reason(get_testdata_file("JPEG-lossy.dcm"))  # 12-bit JPEG: Pillow cannot decode it
    assert reason.startswith("DICOM compressed with JPEG Extended (Process 2 and 4): install pylibjpeg to read it")
    assert _reason(fm.write_text_as_image(tmp_path, "fake.dcm")).startswith("not a DICOM file")


def test_dicom_size_limit(tmp_path):
    path = fm.write_dicom_copy(tmp_path, "ct.dcm", "CT_small.dcm")
    assert _reason(path, max_pixels=100) == "decompression bomb: 128x128 pixels exceeds the limit of 100"


def test_parse_dicom_window():
    assert parse_dicom_window("lung") == DicomWindow(*DICOM_WINDOW_PRESETS["lung"])
    assert parse_dicom_window(" -600 , 1500 ") == DicomWindow(-600.0, 1500.0)
    assert parse_dicom_window("auto") == "auto"
    assert parse_dicom_window("none") is None and parse_dicom_window("full") is None
    with pytest.raises(RaganError, match="Did you mean 'lung'"):
        parse_dicom_window("lungs")
    with pytest.raises(RaganError, match="width"):
        DicomWindow(40.0, 0.0)
    with pytest.raises(RaganError, match="kind='png'"):
        read_file("x.png", kind="png", data=b"x")


# --------------------------------------------------------------------------- arrays


@pytest.mark.parametrize(
    ("array", "channels", "bits", "maximum"),
    [
        (np.full((5, 6), 255, np.uint8), 1, 8, 1.0),
        (np.full((5, 6, 1), 65535 // 2, np.uint16), 1, 16, (65535 // 2) / 65535),
        (np.ones((5, 6, 3), bool), 3, 8, 1.0),
        (np.full((5, 6, 3), 0.25, np.float32), 3, 16, 0.25),
    ],
)
def test_array_to_frame(array, channels, bits, maximum):
    frame = array_to_frame(array)
    assert frame.pixels.shape == (5, 6, channels) and frame.pixels.dtype == np.float32
    assert frame.source_bits == bits
    assert frame.pixels.max() == pytest.approx(maximum)


def test_array_to_frame_composites_alpha():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[0, :, 3] = 255
    pixels = array_to_frame(rgba).pixels
    np.testing.assert_allclose(pixels[0], 200 / 255, atol=1e-6)
    assert np.all(pixels[1] == 0)


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (np.zeros((5, 6), np.int32), "dtype int32"),
        (np.full((5, 6), 1.5, np.float32), "[0, 1]"),
        (np.full((5, 6), np.nan, np.float32), "NaN"),
        (np.zeros((1, 28, 28), np.uint8), "shape (1, 28, 28)"),
        (np.zeros((5,), np.uint8), "shape (5,)"),
    ],
)
def test_array_to_frame_rejects(array, fragment):
    with pytest.raises(ImageReadError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        array_to_frame(array)


def test_pneumoniamnist_arrays(pneumonia_npz):
    with np.load(pneumonia_npz) as data:
        images = data["val_images"][:4]
    frames = [array_to_frame(image) for image in images]
    assert all(f.pixels.shape == (28, 28, 1) for f in frames)
    np.testing.assert_allclose(frames[0].pixels[..., 0] * 255, images[0], atol=1e-4)


# --------------------------------------------------------------------------- folder scanning


def test_scan_real_brain_tumor_training_folder(brain_mri_dir):
    files, skipped = scan_folder(brain_mri_dir / "Training")
    assert Counter(f.label for f in files) == {
        "glioma_tumor": 826,
        "meningioma_tumor": 822,
        "no_tumor": 395,
        "pituitary_tumor": 827,
    }
    assert skipped == []
    assert all(f.kind == "image" and os.path.isabs(f.path) for f in files)
    assert [f.relpath for f in files] == sorted(f.relpath for f in files)
    assert "glioma_tumor/gg (10).jpg" in {f.relpath for f in files}


def test_scan_labelled_folder_with_odd_names(tmp_path):
    fm.write_image_folder(
        tmp_path,
        {
            "normal/chest x-ray ü.png": "png",
            "normal/B.JPG": "jpg",
            "normal/sub dir/deeper.tif": "tif",
            "pneumonia/1.bmp": "bmp",
            "pneumonia/series 1/IM000001": "dicom",  # DICOM without extension, nested
            "pneumonia/1.2.840.113619.2.55.320": "dicom",  # UID-style name
            "pneumonia/notes.txt": "text",
            "pneumonia/README": "text",
            "pneumonia/.DS_Store": "text",
            ".hidden/x.png": "png",
            "__MACOSX/normal/._a.png": "png",
            "README.md": "text",
            "empty class/.keep": "text",
        },
    )
    files, skipped = scan_folder(tmp_path)
    assert [(f.relpath, f.label, f.kind) for f in files] == [
        ("normal/B.JPG", "normal", "image"),
        ("normal/chest x-ray ü.png", "normal", "image"),
        ("normal/sub dir/deeper.tif", "normal", "image"),
        ("pneumonia/1.2.840.113619.2.55.320", "pneumonia", "dicom"),
        ("pneumonia/1.bmp", "pneumonia", "image"),
        ("pneumonia/series 1/IM000001", "pneumonia", "dicom"),
    ]
    assert skipped == [
        ("README.md", "not an image: unsupported extension '.md'"),
        ("pneumonia/README", "not an image: no file extension and no DICOM header"),
        ("pneumonia/notes.txt", "not an image: unsupported extension '.txt'"),
    ]
    assert files[1].path == str(tmp_path / "normal" / "chest x-ray ü.png")
    for source in files:  # everything found is really readable
        assert read_file(source.path, kind=source.kind)


def test_scan_flat_folder_is_unlabelled(tmp_path):
    fm.write_image_folder(tmp_path, {"a.png": "png", "b.dcm": "dicom", "c.txt": "text"})
    files, skipped = scan_folder(tmp_path)
    assert [(f.relpath, f.label, f.kind) for f in files] == [("a.png", None, "image"), ("b.dcm", None, "dicom")]
    assert skipped == [("c.txt", "not an image: unsupported extension '.txt'")]


def test_scan_follows_symlinks_but_not_loops(tmp_path):
    fm.write_image_folder(tmp_path / "elsewhere", {"a.png": "png", "c.png": "png"})
    fm.write_image_folder(tmp_path / "data", {"real/b.png": "png"})
    (tmp_path / "data" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "data" / "real" / "loop").symlink_to(tmp_path / "data", target_is_directory=True)
    (tmp_path / "data" / "real" / "one.png").symlink_to(tmp_path / "elsewhere" / "c.png")
    (tmp_path / "data" / "real" / "inside.png").symlink_to(tmp_path / "data" / "real" / "b.png")
    files, skipped = scan_folder(tmp_path / "data", follow_symlinks=True)
    assert [(f.relpath, f.label) for f in files] == [
        ("linked/a.png", "linked"),
        ("linked/c.png", "linked"),
        ("real/b.png", "real"),
        ("real/inside.png", "real"),
        ("real/one.png", "real"),
    ]
    # By default links out of the input are not read (a folder from someone else must not make
    # ragan read the user's other files); links inside it are.
    files, skipped = scan_folder(tmp_path / "data")
    assert [(f.relpath, f.label) for f in files] == [("real/b.png", "real"), ("real/inside.png", "real")]
    assert [path for path, _ in skipped] == ["linked/", "real/one.png"]
    assert all("outside the input folder" in reason and "--follow-symlinks" in reason for _, reason in skipped)


@pytest.mark.parametrize(
    ("layout", "fragment"),
    [
        (
            {"a.png": "png", "cls/b.png": "png"},
            "both directly inside it (e.g. 'a.png') and in sub-folders (e.g. 'cls/b.png')",
        ),
        ({"notes.txt": "text"}, "contains no image files (1 other files, e.g. 'notes.txt'"),
        ({".hidden.png": "png"}, "contains no image files"),
    ],
)
def test_scan_errors(tmp_path, layout, fragment):
    fm.write_image_folder(tmp_path, layout)
    with pytest.raises(RaganError) as caught:
        scan_folder(tmp_path)
    assert fragment in str(caught.value) and str(tmp_path) in str(caught.value)


def test_scan_missing_or_file_root(tmp_path):
    with pytest.raises(RaganError, match="does not exist"):
        scan_folder(tmp_path / "missing")
    with pytest.raises(RaganError, match="is not a folder"):
        scan_folder(fm.write_mode_image(tmp_path, "a.png", "L"))


def test_readers_do_not_import_tensorflow():
    code = (
        "import sys, ragan.data.readers, ragan.data.preprocess; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert result.stdout.split() == ["False", "False"]
