"""Evaluation: is the synthetic data any good, and does it help?

* :mod:`~ragan.evaluation.metrics`: FID, KID, precision/recall, PSNR, SSIM, MS-SSIM, MS-GMSD,
  MDSI, HaarPSI on arrays.
* :mod:`~ragan.evaluation.features`: the feature extractors those metrics need (InceptionV3,
  or a domain classifier's layer).
* :mod:`~ragan.evaluation.memorisation`: finds synthetic images that copy training images.
* :mod:`~ragan.evaluation.privacy`: membership-inference attacks (can the training patients be told
  from others?), :mod:`~ragan.evaluation.privacy_audit` the report's Privacy section.
* :mod:`~ragan.evaluation.floors`: each metric between two real sets of the same sizes.
* :mod:`~ragan.evaluation.classifier`: build/train/test the classifier (small CNN, EfficientNet).
* :mod:`~ragan.evaluation.study`: the classifier study over real/synthetic training mixes.
* :mod:`~ragan.evaluation.statistics`: paired bootstrap intervals and the helps/hurts verdict.
* :mod:`~ragan.evaluation.mix`: write a mixed real + synthetic prepared dataset (``ragan mix``).
* :mod:`~ragan.evaluation.report`: :func:`evaluate`, all of it as ``report.json`` + ``report.html``.

Names are imported on first use, so ``import ragan.evaluation`` stays cheap and TensorFlow is
imported only by the functions that need it.

Example (``evaluate`` needs two prepared datasets on disk and trains classifiers, hence skipped):
    >>> import ragan
    >>> report = ragan.evaluation.evaluate("prepared", "synthetic", out="report")   # doctest: +SKIP
    >>> features = np.random.default_rng(0).normal(size=(50, 4))
    >>> abs(ragan.evaluation.fid_from_features(features, features)) < 1e-6
    True
"""

from __future__ import annotations

from ragan._lazy import lazy_attributes

# name -> module that defines it.
_LAZY = {
    # metrics
    "fid_from_features": "metrics",
    "frechet_distance": "metrics",
    "kid_from_features": "metrics",
    "kid_subset_size": "metrics",
    "precision_recall_from_features": "metrics",
    "psnr": "metrics",
    "ssim": "metrics",
    "ms_ssim": "metrics",
    "mean_pairwise_ms_ssim": "metrics",
    "ms_gmsd": "metrics",
    "mdsi": "metrics",
    "haarpsi": "metrics",
    "nearest_images": "metrics",
    # statistics
    "paired_difference": "statistics",
    "verdict": "statistics",
    # features
    "FeatureExtractor": "features",
    "inception_extractor": "features",
    "model_extractor": "features",
    # memorisation
    "MemorisationReport": "memorisation",
    "memorisation_audit": "memorisation",
    # privacy and floors
    "membership_attack": "privacy",
    "membership_auc": "privacy",
    "distance_attack": "privacy",
    "tpr_at_fpr": "privacy",
    "feature_floors": "floors",
    # classifier
    "build_classifier": "classifier",
    "train_classifier": "classifier",
    "compile_classifier": "classifier",
    "evaluate_classifier": "classifier",
    "classification_metrics": "classifier",
    "predict_probabilities": "classifier",
    "roc_auc": "classifier",
    "roc_auc_one_vs_rest": "classifier",
    "standard_augmentation": "classifier",
    "array_dataset": "classifier",
    "TrainingResult": "classifier",
    "CLASSIFIER_KINDS": "classifier",
    "CLASSIFIER_VERSION": "classifier",
    # study
    "classifier_study": "study",
    "StudyResult": "study",
    "ArmResult": "study",
    "ARM_KINDS": "study",
    # mix
    "mix_datasets": "mix",
    "MixResult": "mix",
    "read_split": "mix",  # defined in ragan.data.arrays, where the other stages read it from
    # report
    "evaluate": "report",
    "EvaluationReport": "report",
}
_SUBMODULES = (
    "metrics",
    "features",
    "memorisation",
    "privacy",
    "privacy_audit",
    "floors",
    "classifier",
    "study",
    "statistics",
    "mix",
    "report",
)

__all__ = [*_LAZY, *_SUBMODULES]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
