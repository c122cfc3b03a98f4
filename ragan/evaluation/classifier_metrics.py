"""A classifier's test figures from true labels and predicted probabilities: ROC AUC (binary and macro
one-vs-rest), accuracy, balanced accuracy, per-class precision/recall, the confusion matrix and, for
two classes, sensitivity and specificity. scikit-learn computes the AUC and the confusion matrix; it
is imported on first use.

Example:
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.4, 0.8])  # a tie between a positive and a negative counts 1/2
    0.875
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ragan.errors import RaganError

__all__ = ["classification_metrics", "roc_auc", "roc_auc_one_vs_rest"]


def roc_auc(labels, scores) -> float | None:
    """Binary ROC AUC (:func:`sklearn.metrics.roc_auc_score`): the probability that a random positive
    scores above a random negative, ties counted as one half.

    Args:
        labels: ``(N,)`` truthy for positives.
        scores: ``(N,)`` higher means more positive.

    Returns:
        The AUC in ``[0, 1]``, or None when only one class is present (it is undefined then).

    Example:
        >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise RaganError(f"scores: {scores.size} scores for {labels.size} labels.")
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def roc_auc_one_vs_rest(labels, probabilities) -> tuple[float | None, list[float | None]]:
    """Macro ROC AUC over classes, each class against the rest.

    For two classes it is the AUC of class 1's probability (class 0's AUC is the same number).
    Classes absent from ``labels`` (or the only class present) have an undefined AUC (None) and
    are left out of the macro average.

    Returns:
        ``(macro AUC or None, per-class AUCs)``.

    Example:
        >>> macro, per_class = roc_auc_one_vs_rest([0, 1, 2], [[.8, .1, .1], [.1, .8, .1], [.3, .3, .4]])
        >>> macro, per_class
        (1.0, [1.0, 1.0, 1.0])
    """
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.size:
        raise RaganError(f"probabilities: expected shape ({labels.size}, num_classes), got {probabilities.shape}.")
    num_classes = probabilities.shape[1]
    if num_classes == 2:
        auc = roc_auc(labels == 1, probabilities[:, 1])
        return auc, [auc, auc]
    per_class = [roc_auc(labels == c, probabilities[:, c]) for c in range(num_classes)]
    defined = [auc for auc in per_class if auc is not None]
    return (float(np.mean(defined)) if defined else None), per_class


def classification_metrics(
    labels, probabilities, *, class_names: Sequence[str] | None = None, positive_class: int | str | None = None
) -> dict:
    """All test figures of a classifier from true labels and predicted class probabilities.

    The predicted class is the most probable one (a 0.5 threshold for binary tasks).

    Args:
        labels: ``(N,)`` true class indices.
        probabilities: ``(N, K)`` predicted probabilities.
        class_names: K names (default ``class_0`` ...).
        positive_class: Binary tasks only: the positive class (index or name; default index 1).

    Returns:
        ``{"num_examples", "accuracy", "balanced_accuracy", "auc", "auc_per_class",
        "per_class": {name: {"precision", "recall", "support"}}, "confusion_matrix" (rows: true,
        columns: predicted), "class_names"}``, plus ``"sensitivity"``, ``"specificity"`` and
        ``"positive_class"`` for two classes. Undefined values (e.g. precision of a class never
        predicted, AUC with one class present) are None.

    Example:
        >>> m = classification_metrics([0, 0, 1, 1], [[.9, .1], [.6, .4], [.65, .35], [.2, .8]],
        ...                            class_names=["normal", "pneumonia"])
        >>> m["accuracy"], m["auc"], m["sensitivity"], m["specificity"]
        (0.75, 0.75, 0.5, 1.0)
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] != labels.size:
        raise RaganError(f"probabilities: expected shape ({labels.size}, num_classes), got {probabilities.shape}.")
    if labels.size == 0:
        raise RaganError("labels: no examples to evaluate (the test set is empty).")
    num_classes = probabilities.shape[1]
    names = list(class_names) if class_names is not None else [f"class_{c}" for c in range(num_classes)]
    if len(names) != num_classes:
        raise RaganError(f"class_names: {len(names)} names for a {num_classes}-class model.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise RaganError(
            f"labels: values must be class indices in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}."
        )
    predicted = probabilities.argmax(axis=1)
    from sklearn.metrics import confusion_matrix

    confusion = confusion_matrix(labels, predicted, labels=np.arange(num_classes)).astype(np.int64)
    support = confusion.sum(axis=1)
    predicted_counts = confusion.sum(axis=0)
    true_positives = np.diag(confusion)
    per_class = {}
    recalls = []
    for c, name in enumerate(names):
        recall = float(true_positives[c] / support[c]) if support[c] else None
        precision = float(true_positives[c] / predicted_counts[c]) if predicted_counts[c] else None
        per_class[name] = {"precision": precision, "recall": recall, "support": int(support[c])}
        if recall is not None:
            recalls.append(recall)
    macro_auc, auc_per_class = roc_auc_one_vs_rest(labels, probabilities)
    result = {
        "num_examples": int(labels.size),
        "accuracy": float(true_positives.sum() / labels.size),
        "balanced_accuracy": float(np.mean(recalls)),
        "auc": macro_auc,
        "auc_per_class": dict(zip(names, auc_per_class)),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "class_names": names,
    }
    if num_classes == 2:
        positive = 1 if positive_class is None else positive_class
        if isinstance(positive, str):
            if positive not in names:
                raise RaganError(f"positive_class={positive!r} is not a class; classes: {', '.join(names)}.")
            positive = names.index(positive)
        if positive not in (0, 1):
            raise RaganError(f"positive_class={positive!r} is not allowed; use 0, 1 or a class name.")
        negative = 1 - positive
        result["positive_class"] = names[positive]
        result["sensitivity"] = per_class[names[positive]]["recall"]
        result["specificity"] = per_class[names[negative]]["recall"]
    return result
