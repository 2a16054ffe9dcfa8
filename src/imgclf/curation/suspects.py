"""Training images whose folder (label) is probably wrong: out-of-fold probabilities, ranked by cleanlab.

Method (measured in ``bench/label_errors.py``): a pretrained backbone's pooled features of every image (cached on
disk like training's, :mod:`imgclf.training.features`), power-normalised (signed square root, then L2; Perronnin et
al. 2010) so that a few large activations do not dominate; out-of-fold class probabilities from a
``folds``-fold stratified cross-validation of a logistic regression on them (scikit-learn's ``cross_val_predict``:
no image is judged by a model that saw its label); then cleanlab's
``cleanlab.filter.find_label_issues(labels, pred_probs, return_indices_ranked_by="self_confidence")`` (Northcutt
et al. 2021, confident learning) flags and ranks the images whose given label is least likely. Flagged is not
proven wrong: some are hard pictures, or not of any class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from imgclf.data.images import ImageSpec
from imgclf.data.samples import Dataset
from imgclf.errors import ImgclfError, check_positive_int
from imgclf.models import create_model
from imgclf.models.backbones import get_backbone
from imgclf.models.transfer import split_at_features
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.sources import samples_dataset
from imgclf.training.features import cached_features, feature_cache_key, weights_fingerprint
from imgclf.training.inputs import load_data
from imgclf.training.resolved import BACKBONE_INTERPOLATION

#: Folds of the cross-validation that gives every image an out-of-fold probability.
FOLDS = 5


@dataclass(frozen=True)
class Suspect:
    """An image whose given label is probably wrong.

    Attributes:
        path: the image file.
        split: ``train`` or ``validation``.
        label: the class it is filed under.
        suggested: the class the out-of-fold model finds most likely.
        confidence: the out-of-fold probability of ``label`` (self-confidence), in [0, 1]; lower is more suspect.
    """

    path: str
    split: str
    label: str
    suggested: str
    confidence: float


@dataclass(frozen=True)
class SuspectReport:
    """What :func:`find_label_issues` found.

    Attributes:
        suspects: flagged images, most likely wrong first.
        looked_at: images judged (readable ones).
        skipped: files that could not be read.
        features_from_cache: the backbone features came from the disk cache.
    """

    suspects: tuple[Suspect, ...]
    looked_at: int
    skipped: SkippedFiles
    features_from_cache: bool


def power_normalise(features: np.ndarray) -> np.ndarray:
    """Signed square root, then each row scaled to unit L2 norm: float64 ``(n, d)`` (Perronnin et al. 2010)."""
    x = np.sign(features) * np.sqrt(np.abs(features.astype(np.float64)))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = 0):
    """Class probabilities float64 ``(n, n_classes)`` of every row from a logistic regression that did not see it
    (stratified ``folds``-fold ``cross_val_predict`` on :func:`power_normalise`'d ``features``).

    Raises:
        ImgclfError: a class with fewer than ``folds`` images.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = np.bincount(labels)
    if counts.min() < folds:
        raise ImgclfError(f"finding wrong labels needs at least {folds} images in every class. "
                          f"Received: {counts.min()} in class {int(counts.argmin())}")  # fmt: skip
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    model = LogisticRegression(max_iter=2000)
    return cross_val_predict(model, power_normalise(features), labels, cv=cv, method="predict_proba")


def rank_label_issues(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Indices of the rows cleanlab flags, most likely mislabelled first (``find_label_issues`` ranked by
    self-confidence).

    Raises:
        ImgclfError: cleanlab is not installed (the ``curation`` extra).
    """
    try:
        from cleanlab.filter import find_label_issues as cleanlab_issues
    except ImportError:
        raise ImgclfError("finding wrong labels needs cleanlab: pip install 'imgclf[curation]'") from None
    return np.asarray(cleanlab_issues(labels, probabilities, return_indices_ranked_by="self_confidence"), int)


def backbone_features(dataset: Dataset, backbone: str, weights: str | os.PathLike | None, batch_size: int = 32):
    """Pooled backbone features of every readable training and validation image (cut layer's output averaged over
    height and width), cached on disk under a key of the backbone, its weights and the images.

    Returns:
        ``(features float32 (n, d), labels int (n,), paths, splits, skipped, from_cache)``.
    """
    spec = get_backbone(backbone)
    image = ImageSpec(spec.default_size, "rgb", BACKBONE_INTERPOLATION)
    model = create_model(backbone, image.input_shape, dataset.num_classes, "categorical", pretrained=weights,
                         head="gap", dropout=0.0)  # fmt: skip
    extractor = split_at_features(model)[0]
    skipped = SkippedFiles()
    parts = [(name, s) for name, s in (("train", dataset.train), ("validation", dataset.validation)) if s is not None]
    streams = [samples_dataset(s, image=image, class_mode="sparse", num_classes=dataset.num_classes,
                               batch_size=batch_size, cache="none", skipped=skipped) for _, s in parts]  # fmt: skip
    key = feature_cache_key(["suspects", backbone, weights_fingerprint(None if weights is None else str(weights)),
                             list(image.input_shape), image.interpolation], dataset)  # fmt: skip
    train, val, from_cache = cached_features(key, extractor, streams[0], streams[1] if len(streams) > 1 else None,
                                             skipped)  # fmt: skip
    features, labels, paths, splits = [], [], [], []
    for (name, samples), (f, y) in zip(parts, [train, val]):
        kept = [p for p in samples.paths if p not in skipped]
        features.append(f.reshape(len(f), -1, f.shape[-1]).mean(axis=1) if f.ndim > 2 else f)
        labels.append(np.asarray(y).reshape(-1).astype(int))
        paths += kept
        splits += [name] * len(kept)
    return np.concatenate(features), np.concatenate(labels), paths, splits, skipped, from_cache


def find_label_issues(data, *, backbone: str = "squeezenet1_1", weights: str | os.PathLike | None = None,
                      folds: int = FOLDS, seed: int = 0) -> SuspectReport:  # fmt: skip
    """The images of ``dataset`` (training and validation) whose folder is probably the wrong class.

    Args:
        data: a dataset folder (any layout ``imgclf train`` reads), a named dataset, or a loaded
            :class:`~imgclf.data.samples.Dataset` (:func:`imgclf.load_folder`); a folder without a validation
            split is judged whole.
        backbone: a pretrained backbone (``imgclf backbones``) whose features judge the images.
        weights: its weights file, ``imagenet`` (downloaded once), or ``None`` for random weights (tests only).
        folds: cross-validation folds (each class needs at least as many images).
        seed: seed of the folds.

    Returns:
        A :class:`SuspectReport`: the flagged images, most likely wrong first.

    Raises:
        ImgclfError: unusable data, an unknown backbone, unusable weights, a class with fewer than ``folds``
            images, or cleanlab missing.
    """
    folds = check_positive_int("folds", folds)
    dataset = load_data(data, None, validation_split=0.0, seed=seed, label_pattern=None, label_column="label")
    features, labels, paths, splits, skipped, from_cache = backbone_features(dataset, backbone, weights)
    probabilities = out_of_fold_probabilities(features, labels, folds, seed)
    names = list(dataset.class_names)
    suspects = tuple(
        Suspect(
            paths[i],
            splits[i],
            names[labels[i]],
            names[int(probabilities[i].argmax())],
            float(probabilities[i, labels[i]]),
        )  # fmt: skip
        for i in rank_label_issues(labels, probabilities)
    )
    return SuspectReport(suspects, len(paths), skipped, from_cache)


__all__ = ["Suspect", "SuspectReport", "find_label_issues", "out_of_fold_probabilities", "rank_label_issues",
           "power_normalise", "backbone_features"]  # fmt: skip
