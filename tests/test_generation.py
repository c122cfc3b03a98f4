"""ragan.generate / `ragan generate`: formats, labels, determinism, the discriminator filter."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from training_fixtures import tiny_generator_run

from ragan.errors import RaganError
from ragan.generation import generate, load_generator
from tests.runs import one_line_error, run_cli


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory holding a tiny conditional DCGAN (untrained: generation does not care)."""
    return tiny_generator_run(tmp_path_factory.mktemp("run"))


def read_pngs(folder):
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_png_output_is_per_class_and_reproducible(tiny_run, tmp_path):
    first = generate(tiny_run, 6, tmp_path / "a", seed=3, progress=False)
    generate(tiny_run, 6, tmp_path / "b", seed=3, progress=False)
    generate(tiny_run, 6, tmp_path / "c", seed=4, progress=False)
    a, b, c = (read_pngs(tmp_path / x) for x in "abc")
    assert first.num_images == 6 and sorted(first.labels) == [0, 0, 0, 1, 1, 1]
    assert sorted({name.split("/")[0] for name in a}) == ["normal", "pneumonia"]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert next(iter(a.values())).shape == (16, 16) and next(iter(a.values())).dtype == np.uint8
    info = json.loads((tmp_path / "a" / "generation.json").read_text())
    assert info["seed"] == 3 and info["model"] == "dcgan"


def test_batch_size_does_not_change_the_images(tiny_run, tmp_path):
    generate(tiny_run, 40, tmp_path / "small", seed=5, batch_size=7, progress=False)
    generate(tiny_run, 40, tmp_path / "large", seed=5, batch_size=256, progress=False)
    small, large = read_pngs(tmp_path / "small"), read_pngs(tmp_path / "large")
    assert len(small) == 40 and small.keys() == large.keys()
    assert all(np.array_equal(small[k], large[k]) for k in small)


def test_images_are_written_round_by_round_not_held_in_memory(tiny_run, tmp_path, monkeypatch):
    import ragan.generation as generation

    gan = load_generator(tiny_run)
    real_generate = gan.generate
    on_disk_before_each_round = []

    def counting_generate(*args, **kwargs):
        on_disk_before_each_round.append(len(list(generation._partial_dir(tmp_path / "s").rglob("*.png"))))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(gan, "generate", counting_generate)
    result = generate(gan, 300, tmp_path / "s", seed=0, progress=False)
    assert result.num_images == 300 and len(list((tmp_path / "s").rglob("*.png"))) == 300
    assert on_disk_before_each_round == [0, generation.SEED_ROUND]  # round 1 was on disk before round 2


def test_filter_is_refused_for_critic_models(tmp_path):
    from ragan.models import WGANGP

    gan = WGANGP({"latent_dim": 8, "base_filters": 8}, image_size=16, channels=1)
    gan.compile()
    with pytest.raises(RaganError, match="not probabilities"):
        generate(gan, 4, tmp_path / "w", filter_threshold=0.7, progress=False)
    assert not (tmp_path / "w").exists()
    assert generate(gan, 4, tmp_path / "w", progress=False).num_images == 4


def test_a_gan_trained_on_16_bit_images_writes_16_bit_images(tmp_path):
    """No silent truncation to 8 bits: run.json's dtype (the training data's) decides the output."""
    from ragan.data.manifest import read_manifest
    from ragan.data.pipeline import load_dataset
    from ragan.models import DCGAN

    run = tmp_path / "run16"
    run.mkdir()
    gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16, channels=1)
    gan.compile()
    gan.save(run / "model.keras")
    (run / "run.json").write_text(json.dumps({"model": "model.keras", "dtype": "uint16"}))
    generate(run, 6, tmp_path / "records", format="tfrecord", seed=2, progress=False)
    manifest = read_manifest(tmp_path / "records")
    assert manifest.dtype == "uint16" and manifest.options["bit_depth"] == 16
    generate(run, 6, tmp_path / "pngs", seed=2, progress=False)
    pngs = sorted((tmp_path / "pngs").glob("*.png"))
    with Image.open(pngs[0]) as first:
        assert first.mode in ("I;16", "I;16B", "I")
    pixels = np.stack([np.asarray(Image.open(p), dtype=np.uint16) for p in pngs])
    assert pixels.max() > 255 and np.any(pixels % 257 != 0)  # real 16-bit values, not 8-bit ones scaled up
    # The TFRecords and the PNGs hold the same pixels; load_dataset scales uint16 by 65535.
    images = next(iter(load_dataset(tmp_path / "records", "train", batch_size=6, shuffle=False, with_labels=False)))
    np.testing.assert_array_equal(np.rint((images.numpy()[..., 0] + 1) * 32767.5).astype(np.uint16), pixels)


def test_labels_by_name_and_index(tiny_run, tmp_path):
    result = generate(tiny_run, 4, tmp_path / "p", labels=["pneumonia"], progress=False)
    assert result.labels == [1, 1, 1, 1]
    assert len(list((tmp_path / "p" / "pneumonia").glob("*.png"))) == 4
    assert not (tmp_path / "p" / "normal").exists()
    assert generate(tiny_run, 3, tmp_path / "i", labels=[0], progress=False).labels == [0, 0, 0]
    with pytest.raises(RaganError, match="Did you mean 'pneumonia'"):
        generate(tiny_run, 3, tmp_path / "x", labels=["pnuemonia"], progress=False)


def test_tfrecord_output_reads_back_like_real_data(tiny_run, tmp_path):
    from ragan.data.manifest import read_manifest
    from ragan.data.pipeline import load_dataset

    generate(tiny_run, 10, tmp_path / "t", format="tfrecord", seed=1, progress=False)
    manifest = read_manifest(tmp_path / "t")
    assert manifest.synthetic and manifest.generator["seed"] == 1 and manifest.generator["model"] == "dcgan"
    assert manifest.class_names == ["normal", "pneumonia"] and manifest.splits["train"].num_examples == 10
    assert manifest.splits["train"].class_counts == {"normal": 5, "pneumonia": 5}
    images, labels = next(iter(load_dataset(tmp_path / "t", "train", batch_size=10, shuffle=False)))
    # The same seed as PNGs gives the same pixels (file names carry the image index).
    generate(tiny_run, 10, tmp_path / "png", format="png", seed=1, progress=False)
    pngs = {int(p.stem.split("-")[1]): np.asarray(Image.open(p)) for p in (tmp_path / "png").rglob("*.png")}
    as_uint8 = np.rint((images.numpy() + 1) * 127.5).astype(np.uint8)[..., 0]
    assert all(np.array_equal(as_uint8[i], pngs[i]) for i in range(10))
    assert labels.numpy().tolist() == [0, 1] * 5


def test_discriminator_filter_keeps_only_confident_images(tiny_run, tmp_path):
    gan = load_generator(tiny_run)
    probe = gan.generate(64, seed=123)
    labels = np.arange(64) % 2
    scores = 1 / (1 + np.exp(-gan.discriminate(probe, labels)))
    threshold = float(np.quantile(scores, 0.5))
    result = generate(
        tiny_run, 8, tmp_path / "f", format="tfrecord", filter_threshold=threshold, batch_size=16, progress=False
    )
    assert result.num_images == 8 and result.num_generated > 8
    from ragan.data.pipeline import load_dataset

    images, kept_labels = next(iter(load_dataset(tmp_path / "f", "train", batch_size=8, shuffle=False)))
    rescored = 1 / (1 + np.exp(-gan.discriminate(images.numpy(), kept_labels.numpy())))
    assert np.all(rescored >= threshold - 0.05)  # uint8 rounding moves scores slightly
    with pytest.raises(RaganError, match="scored >= 1.0"):
        generate(tiny_run, 4, tmp_path / "g", filter_threshold=1.0, max_attempts=2, progress=False)
    assert not (tmp_path / "g").exists() and not (tmp_path / ".g.ragan-partial").exists()


def test_bad_arguments(tiny_run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    with pytest.raises(RaganError, match="not empty"):
        generate(tiny_run, 2, tmp_path / "full", progress=False)
    assert (tmp_path / "full" / "x.txt").read_text() == "keep me"
    with pytest.raises(RaganError, match="does not exist"):
        generate(tmp_path / "nope", 2, tmp_path / "o", progress=False)
    with pytest.raises(RaganError, match="positive"):
        generate(tiny_run, 0, tmp_path / "o", progress=False)
    with pytest.raises(RaganError, match="format='jpg'"):
        generate(tiny_run, 2, tmp_path / "o", format="jpg", progress=False)
    with pytest.raises(RaganError, match="no trained model"):
        generate(tmp_path, 2, tmp_path / "o2", progress=False)


def test_cli_generate(tiny_run, tmp_path):
    out = tmp_path / "cli"
    result = run_cli("generate", tiny_run, "--n", "4", "--out", out, "--labels", "normal,pneumonia", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "wrote 4 images" in result.stdout and "normal: 2, pneumonia: 2" in result.stdout
    one_line_error(run_cli("generate", tiny_run, "--n", "4", "--out", out, "--quiet"))
