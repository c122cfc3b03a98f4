"""The classifier protocol: AUC and test figures by hand, builds, augmentation, training."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ragan.errors import RaganError
from ragan.evaluation.classifier import (
    array_dataset,
    balanced_class_weights,
    build_classifier,
    classification_metrics,
    classifier_input_resize,
    evaluate_classifier,
    roc_auc,
    roc_auc_one_vs_rest,
    standard_augmentation,
    train_classifier,
)


def _pairwise_auc(labels, scores):
    """Reference: the fraction of (positive, negative) pairs ordered correctly, ties counting 1/2."""
    labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
    wins = 0.0
    pairs = 0
    for p, n in itertools.product(scores[labels], scores[~labels]):
        wins += 1.0 if p > n else 0.5 if p == n else 0.0
        pairs += 1
    return wins / pairs


def test_roc_auc_hand_computed():
    # Pairs (pos, neg): (0.35, 0.1) right, (0.35, 0.4) wrong, (0.8, 0.1) right, (0.8, 0.4) right -> 3/4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    # A tie between a positive and a negative counts one half: (0.5 ~ 0.5) 0.5 + 3 right = 3.5 / 4.
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875
    assert roc_auc([1, 1, 0], [0.1, 0.2, 0.9]) == 0.0
    assert roc_auc([1, 1, 1], [0.1, 0.2, 0.9]) is None  # undefined with one class


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.normal(size=60) + labels, 1)  # rounding makes ties
    assert roc_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores), abs=1e-12)


def test_roc_auc_and_confusion_matrix_equal_the_former_hand_written_formulas():
    """scikit-learn gives the values of the rank-sum AUC and np.add.at confusion matrix used before."""
    from scipy.stats import rankdata

    from ragan.evaluation.classifier import classification_metrics

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 40)
    scores = np.round(rng.uniform(size=40) + 0.3 * labels, 1)  # many ties, across classes too
    positives = labels.astype(bool)
    ranks = rankdata(scores)
    former = (ranks[positives].sum() - positives.sum() * (positives.sum() + 1) / 2) / (
        positives.sum() * (~positives).sum()
    )
    assert roc_auc(labels, scores) == pytest.approx(former, abs=1e-12)
    # Three classes, class 2 never predicted: its column is all zeros.
    labels = np.array([0, 0, 1, 1, 2, 2, 1])
    probabilities = np.array([[0.6, 0.3, 0.1]] * 3 + [[0.2, 0.7, 0.1]] * 4)
    predicted = probabilities.argmax(axis=1)
    former_confusion = np.zeros((3, 3), np.int64)
    np.add.at(former_confusion, (labels, predicted), 1)
    assert classification_metrics(labels, probabilities)["confusion_matrix"] == former_confusion.tolist()


def test_one_vs_rest_macro_auc_hand_computed():
    labels = [0, 0, 1, 1, 2, 2]
    probabilities = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.3, 0.4, 0.3],  # class 0 scored below one class-1 image for class 0
            [0.4, 0.5, 0.1],
            [0.1, 0.8, 0.1],
            [0.1, 0.1, 0.8],
            [0.2, 0.2, 0.6],
        ]
    )
    macro, per_class = roc_auc_one_vs_rest(labels, probabilities)
    # Class 0 positives {0.7, 0.3} vs negatives {0.4, 0.1, 0.1, 0.2}: 4 + 3 = 7 of 8 pairs.
    # Class 1 positives {0.5, 0.8} vs {0.2, 0.4, 0.1, 0.2}: all 8 right. Class 2: all 8 right.
    assert per_class == [7 / 8, 1.0, 1.0]
    assert macro == pytest.approx((7 / 8 + 2) / 3)


def test_classification_metrics_binary_by_hand():
    labels = [0, 0, 0, 1, 1]
    probabilities = [[0.9, 0.1], [0.4, 0.6], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    metrics = classification_metrics(labels, probabilities, class_names=["normal", "pneumonia"])
    # Predicted: 0, 1, 0, 1, 0 -> TN=2, FP=1, TP=1, FN=1.
    assert metrics["confusion_matrix"] == [[2, 1], [1, 1]]
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["sensitivity"] == pytest.approx(1 / 2) and metrics["specificity"] == pytest.approx(2 / 3)
    assert metrics["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert metrics["per_class"]["pneumonia"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert metrics["per_class"]["normal"]["precision"] == pytest.approx(2 / 3)
    # Pneumonia scores {0.7, 0.4} vs normal {0.1, 0.6, 0.2}: 3 + 2 = 5 of 6 pairs.
    assert metrics["auc"] == pytest.approx(5 / 6) and metrics["positive_class"] == "pneumonia"
    flipped = classification_metrics(
        labels, probabilities, class_names=["normal", "pneumonia"], positive_class="normal"
    )
    assert flipped["sensitivity"] == metrics["specificity"] and flipped["auc"] == metrics["auc"]


def test_classification_metrics_undefined_values_are_none():
    metrics = classification_metrics([0, 1, 1], [[0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1]])
    assert metrics["per_class"]["class_0"]["precision"] is None  # never predicted
    assert metrics["per_class"]["class_2"]["recall"] is None  # no support
    assert metrics["auc_per_class"]["class_2"] is None and "sensitivity" not in metrics
    with pytest.raises(RaganError, match="class indices"):
        classification_metrics([0, 3], [[0.5, 0.5], [0.5, 0.5]])


def test_balanced_class_weights():
    weights = balanced_class_weights([0, 1, 1, 1], 2)
    assert weights == {0: 2.0, 1: pytest.approx(2 / 3)}
    assert weights[0] * 1 == pytest.approx(weights[1] * 3)  # each class contributes equally


def test_standard_augmentation_is_seeded_and_masked():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    scaled = images.astype(np.float32) / 127.5 - 1.0
    first = np.asarray(standard_augmentation(scaled, [1, 2]))
    again = np.asarray(standard_augmentation(scaled, [1, 2]))
    other = np.asarray(standard_augmentation(scaled, [1, 3]))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.05 and np.abs(first - scaled).mean() > 0.05
    assert first.min() >= -1.0 and first.max() <= 1.0

    mask = np.array([True, False] * 4)
    batches = [
        (x.numpy(), y.numpy())
        for x, y in array_dataset(images, np.arange(8) % 2, batch_size=8, seed=0, augment_mask=mask)
    ]
    augmented, labels = batches[0]
    np.testing.assert_allclose(augmented[~mask], scaled[~mask], atol=1e-6)
    assert all(np.abs(augmented[i] - scaled[i]).mean() > 1e-3 for i in np.flatnonzero(mask))
    assert labels.tolist() == [0, 1] * 4


def test_build_small_cnn_and_errors():
    model = build_classifier("small_cnn", image_size=28, channels=1, num_classes=3)
    assert model.output_shape == (None, 3) and model.layers[-1].name == "logits"
    assert model.get_layer("global_pool") is not None
    with pytest.raises(RaganError, match="Did you mean 'efficientnet_b0'"):
        build_classifier("efficientnet-b0", image_size=28, channels=1, num_classes=2)
    with pytest.raises(RaganError, match="always trained from scratch"):
        build_classifier("small_cnn", image_size=28, channels=1, num_classes=2, weights="imagenet")
    with pytest.raises(RaganError, match="num_classes=1"):
        build_classifier("small_cnn", image_size=28, channels=1, num_classes=1)
    assert classifier_input_resize("efficientnet_b0", 28) == "bilinear 28x28 -> 32x32 inside the classifier"


def _conv_layout(model):
    """(name, strides, output height, filters) of every convolution, in order."""
    return [
        (layer.name, layer.strides, layer.output.shape[1], layer.filters)
        for layer in model.layers
        if type(layer).__name__ == "Conv2D"
    ]


def test_small_cnn_has_a_stride_2_stem_from_32_px_and_28_px_is_unchanged():
    from ragan.evaluation.classifier import CLASSIFIER_VERSION

    assert CLASSIFIER_VERSION == 2  # bump it with any change to what build_classifier builds
    # 28 px as in version 1: stride 1 throughout, two convolutions at 28, 14 and 7 px.
    model = build_classifier("small_cnn", image_size=28, channels=1, num_classes=2)
    assert _conv_layout(model) == [
        (f"conv{stage}_{repeat}", (1, 1), size, filters)
        for stage, (size, filters) in enumerate([(28, 16), (14, 32), (7, 64)])
        for repeat in range(2)
    ]
    assert model.count_params() == 81_042
    # From 32 px up one stride-2 convolution replaces the full-size stage; the later stages stay.
    for image_size, stages in ((32, [(16, 32), (8, 64), (4, 128)]), (64, [(32, 32), (16, 64), (8, 128), (4, 128)])):
        model = build_classifier("small_cnn", image_size=image_size, channels=1, num_classes=2)
        assert _conv_layout(model) == [("stem_conv", (2, 2), image_size // 2, 16)] + [
            (f"conv{stage}_{repeat}", (1, 1), size, filters)
            for stage, (size, filters) in enumerate(stages, start=1)
            for repeat in range(2)
        ]
    assert model.get_layer("pool1").output.shape[1:] == (16, 16, 32)
    # An RGB image through the stem: finite logits.
    images = np.linspace(-1, 1, 2 * 32 * 32 * 3, dtype=np.float32).reshape(2, 32, 32, 3)
    model = build_classifier("small_cnn", image_size=32, channels=3, num_classes=2)
    assert np.isfinite(np.asarray(model(images, training=False))).all()


def test_efficientnet_b0_one_channel_28px_builds_and_predicts():
    model = build_classifier("efficientnet_b0", image_size=28, channels=1, num_classes=2)
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["image", "grey_to_rgb", "upsample", "to_0_255"]
    assert model.get_layer("upsample").get_config()["height"] == 32
    images = np.linspace(-1, 1, 2 * 28 * 28, dtype=np.float32).reshape(2, 28, 28, 1)
    logits = np.asarray(model(images, training=False))
    assert logits.shape == (2, 2) and np.isfinite(logits).all()
    # [-1, 1] is mapped onto the 0..255 range Keras' EfficientNet rescales itself.
    to_255 = model.get_layer("to_0_255")
    np.testing.assert_allclose(np.asarray(to_255(np.array([[[[-1.0, 0.0, 1.0]]]], np.float32))), [[[[0, 127.5, 255]]]])


def test_imagenet_weights_offline_is_one_line_error(monkeypatch):
    from ragan._tf import import_keras

    keras = import_keras()

    def offline(**kwargs):
        raise OSError("URL fetch failure on https://storage.googleapis.com/...: [Errno -3] no network")

    monkeypatch.setattr(keras.applications, "EfficientNetB0", offline)
    with pytest.raises(RaganError) as error:
        build_classifier("efficientnet_b0", image_size=32, channels=1, num_classes=2, weights="imagenet")
    message = str(error.value)
    assert "\n" not in message and "local path" in message and "efficientnetb0_notop.h5" in message
    with pytest.raises(RaganError, match="no such file"):
        build_classifier("efficientnet_b0", image_size=32, channels=1, num_classes=2, weights="/nonexistent.h5")


@pytest.mark.slow
def test_efficientnet_local_weights_file_is_loaded(tmp_path):
    from ragan._tf import import_keras

    keras = import_keras()
    backbone = keras.applications.EfficientNetB0(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg"
    )
    path = tmp_path / "b0_notop.weights.h5"
    backbone.save_weights(path)
    model = build_classifier("efficientnet_b0", image_size=32, channels=3, num_classes=2, weights=path)
    loaded = model.get_layer(backbone.name)
    for saved, restored in zip(backbone.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(saved, restored)


def test_set_random_seed_seeds_like_keras_without_clearing_the_kernel_cache(monkeypatch):
    """The study seeds every run; TensorFlow's own set_seed would re-instantiate every tf.function."""
    import random

    import tensorflow as tf
    from tensorflow.python import pywrap_tfe

    from ragan._tf import import_keras
    from ragan._tf_internals import set_random_seed

    keras = import_keras()
    cleared = []
    clear = pywrap_tfe.TFE_ContextClearCaches
    monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", lambda handle: cleared.append(1) or clear(handle))

    def draws():
        shuffled = tf.data.Dataset.range(20).shuffle(20, seed=1)
        weights = keras.initializers.GlorotUniform()((3, 3))
        return random.random(), np.random.rand(), [int(i) for i in shuffled], np.asarray(weights).tolist()

    draws()  # the eager context exists (before it, there is no cache to clear)
    keras.utils.set_random_seed(7)
    expected = draws()
    assert cleared == [1]  # the check below can see a clearing
    draws()  # move every generator on
    set_seed = tf.random.set_seed
    set_random_seed(7)
    assert draws() == expected and cleared == [1]
    assert tf.random.set_seed is set_seed
    set_random_seed(8)
    assert draws() != expected


@pytest.fixture(scope="module")
def pneumonia_slice(pneumonia_npz):
    data = np.load(pneumonia_npz)
    return {
        split: (data[f"{split}_images"][:n], data[f"{split}_labels"][:n, 0])
        for split, n in (("train", 200), ("val", 60), ("test", 100))
    }


def test_small_cnn_learns_pneumonia_above_chance(pneumonia_slice):
    result = train_classifier(pneumonia_slice["train"], pneumonia_slice["val"], epochs=3, batch_size=16, seed=0)
    assert len(result.history["val_auc"]) == result.epochs_trained == 3
    assert result.best_val_auc == max(result.history["val_auc"])
    assert result.history["val_auc"][result.best_epoch - 1] == result.best_val_auc
    metrics = evaluate_classifier(result.model, pneumonia_slice["test"], class_names=["normal", "pneumonia"])
    assert metrics["num_examples"] == 100 and sum(map(sum, metrics["confusion_matrix"])) == 100
    # Chance is AUC 0.5; three short epochs on 200 images reach about 0.95.
    assert metrics["auc"] > 0.8, metrics


def test_train_classifier_on_a_prepared_dataset(tmp_path, pneumonia_slice):
    """tf.data input from ragan.load_dataset, with augmentation, class weights and early stopping."""
    import ragan
    from tests.test_mix import write_prepared_dataset

    prepared = write_prepared_dataset(tmp_path / "prepared", pneumonia_slice, ["normal", "pneumonia"])
    train = ragan.load_dataset(prepared, "train", batch_size=32, seed=0)
    val = ragan.load_dataset(prepared, "val", batch_size=64, shuffle=False)
    result = train_classifier(
        train, val, num_classes=2, epochs=2, augmentation="standard", class_weight="balanced", patience=1, seed=0
    )
    assert result.model.input_shape == (None, 28, 28, 1)
    assert 1 <= result.epochs_trained <= 2 and result.best_val_auc is not None
    with pytest.raises(RaganError, match="num_classes"):
        train_classifier(train, val, epochs=1)
    with pytest.raises(RaganError, match="augmentation='flip'"):
        train_classifier(pneumonia_slice["train"], epochs=1, augmentation="flip")


def test_default_patience_stops_three_epochs_after_the_best_in_training_and_in_the_study():
    import inspect

    from ragan.evaluation.classifier import DEFAULT_PATIENCE
    from ragan.evaluation.study import classifier_study

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (16, 8, 8, 1)).astype(np.float32), np.arange(16) % 2
    # Identical validation images: every epoch ties at AUC 0.5, so the first epoch stays the best.
    flat = np.zeros((8, 8, 8, 1), np.float32), np.arange(8) % 2
    model = build_classifier("small_cnn", image_size=8, channels=1, num_classes=2)
    result = train_classifier((x, y), flat, model=model, epochs=10, batch_size=8)
    assert DEFAULT_PATIENCE == 3
    assert result.best_epoch == 1 and result.epochs_trained == 1 + DEFAULT_PATIENCE
    assert inspect.signature(classifier_study).parameters["patience"].default == DEFAULT_PATIENCE
