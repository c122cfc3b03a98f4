"""Feature extractors: InceptionV3 (random and file weights, offline ImageNet) and model layers."""

import json

import numpy as np
import pytest

from ragan._tf import import_keras, import_tf
from ragan.errors import RaganError
from ragan.evaluation.features import inception_extractor, model_extractor

tf = import_tf()
keras = import_keras()


@pytest.fixture(scope="module")
def random_inception():
    return inception_extractor(weights=None)


@pytest.fixture(scope="module")
def small_images():
    """Four 32x32 single-channel images in [-1, 1] with some structure."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:32] / 31.0
    base = np.stack([np.sin(3 * x + i) * np.cos(2 * y - i) for i in range(4)])[..., None]
    return np.clip(base + rng.normal(0, 0.1, base.shape), -1, 1).astype(np.float32)


def test_inception_random_weights_shape_name_and_determinism(random_inception, small_images):
    features = random_inception(small_images)
    assert features.shape == (4, 2048) and features.dtype == np.float32
    assert np.isfinite(features).all() and features.std() > 0
    assert random_inception.name == "inception_v3_random_weights"
    assert random_inception.resize == "bilinear 299x299 (tf.image.resize, antialias)"
    assert random_inception.feature_dim == 2048
    described = random_inception.describe()
    assert json.loads(json.dumps(described))["name"] == "inception_v3_random_weights"
    # Same images, another batch split: same features (inference mode, no randomness).
    np.testing.assert_allclose(random_inception(small_images, batch_size=3), features, rtol=1e-5, atol=1e-6)
    # Different images give different features.
    assert not np.allclose(features[0], features[1])


def test_inception_repeats_one_channel_explicitly(random_inception, small_images):
    three_channels = np.repeat(small_images, 3, axis=-1)
    np.testing.assert_allclose(random_inception(three_channels), random_inception(small_images), rtol=1e-5, atol=1e-6)


def test_extractor_rejects_images_outside_its_input_range(random_inception, small_images):
    as_uint8 = np.round((small_images + 1) * 127.5).astype(np.uint8)
    with pytest.raises(RaganError, match=r"images: pixel values span \[.*input_range=\(-1, 1\)"):
        random_inception(as_uint8)
    with pytest.raises(RaganError, match="2 channels"):
        random_inception(np.zeros((2, 32, 32, 2), np.float32))
    with pytest.raises(RaganError, match="NaN"):
        random_inception(np.full((1, 32, 32, 1), np.nan, np.float32))


def test_inception_from_local_weights_file_gives_identical_features(random_inception, small_images, tmp_path):
    weights_file = tmp_path / "inception_random.weights.h5"
    random_inception.model.save_weights(str(weights_file))
    # Loaded through the API, for images stored as uint8: the same pictures must give the same
    # features as the [-1, 1] originals through the extractor the weights came from.
    loaded = inception_extractor(weights=str(weights_file), input_range=(0, 255))
    assert loaded.name.startswith("inception_v3_weights:inception_random.weights.h5:md5=")
    assert loaded.input_range == (0.0, 255.0)
    for original, reloaded in zip(random_inception.model.weights, loaded.model.weights):
        np.testing.assert_array_equal(original.numpy(), reloaded.numpy())
    as_uint8 = np.round((small_images + 1) * 127.5).astype(np.uint8)
    np.testing.assert_allclose(loaded(as_uint8), random_inception(as_uint8 / 127.5 - 1.0), rtol=1e-4, atol=1e-5)


def test_inception_imagenet_offline_raises_with_instructions(monkeypatch):
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", no_network)
    with pytest.raises(RaganError, match="weights='imagenet'.*pass its local path as weights="):
        inception_extractor("imagenet")


def test_inception_bad_weights_arguments(tmp_path):
    with pytest.raises(RaganError, match="no such file"):
        inception_extractor(str(tmp_path / "missing.h5"))
    not_weights = tmp_path / "not_weights.h5"
    not_weights.write_bytes(b"this is not an HDF5 file")
    with pytest.raises(RaganError, match="could not be loaded into InceptionV3"):
        inception_extractor(not_weights)


# --------------------------------------------------------------------------------------------
# model_extractor


def tiny_classifier(channels=1, size=16):
    inputs = keras.Input((size, size, channels))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(8, activation="relu", name="embedding")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_classifier")


def test_model_extractor_defaults_to_penultimate_layer():
    keras.utils.set_random_seed(1)
    model = tiny_classifier()
    images = np.random.default_rng(1).uniform(-1, 1, (5, 16, 16, 1)).astype(np.float32)
    extractor = model_extractor(model, name="ragan_classifier:test")
    expected = keras.Model(model.input, model.get_layer("embedding").output)(images).numpy()
    features = extractor(images)
    assert features.shape == (5, 8)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    assert extractor.name == "ragan_classifier:test"
    assert extractor.resize == "bilinear 16x16 (tf.image.resize, antialias)"


def test_model_extractor_named_spatial_layer_is_pooled_and_images_resized():
    model = tiny_classifier()
    images = np.random.default_rng(2).uniform(-1, 1, (3, 24, 24, 1)).astype(np.float32)
    extractor = model_extractor(model, layer="conv")
    assert extractor.name == "model:tiny_classifier/conv"
    resized = tf.image.resize(images, (16, 16), method="bilinear", antialias=True)
    conv = keras.Model(model.input, model.get_layer("conv").output)(resized).numpy()
    np.testing.assert_allclose(extractor(images), conv.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_model_extractor_from_keras_file_and_datasets(tmp_path):
    model = tiny_classifier(channels=3)
    path = tmp_path / "classifier.keras"
    model.save(path)
    images = np.random.default_rng(3).uniform(-1, 1, (6, 16, 16, 1)).astype(np.float32)
    from_object = model_extractor(model)(images)  # 1-channel images repeated for a 3-channel model
    extractor = model_extractor(str(path))
    assert extractor.name == "model:classifier.keras/input_of_logits"
    np.testing.assert_allclose(extractor(images), from_object, rtol=1e-5, atol=1e-6)
    labels = np.arange(6)
    unbatched = tf.data.Dataset.from_tensor_slices((images, labels))
    np.testing.assert_allclose(extractor(unbatched, batch_size=4), from_object, rtol=1e-5, atol=1e-6)
    batched = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels}).batch(5)
    np.testing.assert_allclose(extractor(batched), from_object, rtol=1e-5, atol=1e-6)


def test_model_extractor_maps_input_range_to_model_range():
    model = tiny_classifier()
    images = np.random.default_rng(4).integers(0, 256, (2, 16, 16, 1)).astype(np.uint8)
    extractor = model_extractor(model, input_range=(0, 255), model_input_range=(-1, 1))
    direct = model_extractor(model)(images / 127.5 - 1)
    np.testing.assert_allclose(extractor(images), direct, rtol=1e-5, atol=1e-6)


def test_model_extractor_errors():
    model = tiny_classifier()
    with pytest.raises(RaganError, match="layer='embeding' is not a layer.*Did you mean 'embedding'"):
        model_extractor(model, layer="embeding")
    with pytest.raises(RaganError, match="3 channels cannot be fed"):
        model_extractor(model)(np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(RaganError, match="no such file"):
        model_extractor("/nonexistent/model.keras")

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (-1, 16 * 16)))

    subclassed = Subclassed()
    subclassed(np.zeros((1, 16, 16, 1), np.float32))
    with pytest.raises(RaganError, match="subclassed or unbuilt model"):
        model_extractor(subclassed)
    with pytest.raises(RaganError, match="no images"):
        model_extractor(model)(tf.data.Dataset.from_tensor_slices(np.zeros((0, 16, 16, 1), np.float32)))
