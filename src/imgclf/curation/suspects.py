"""Training images whose folder (label) is probably wrong: out-of-fold probabilities, ranked by cleanlab.

Method (measured in ``bench/label_errors.py``; the variants rejected are there too): a judge's features of every
image — by default a pretrained backbone's cut-layer maps pooled by mean and by max over height and width, averaged
over the image and its mirror (:func:`pooled_extractor`); with ``run``, a trained model's penultimate features,
averaged the same way — cached on disk like training's (:mod:`imgclf.features.extract`), power-normalised (signed
square root, then L2; Perronnin et al. 2010) so that a few large activations do not dominate; out-of-fold class
probabilities from a ``folds``-fold stratified cross-validation of a logistic regression (C = 3) on them, averaged
over 3 cross-validations with other folds
(scikit-learn's ``cross_val_predict``: no image is judged by a model that saw its label); then cleanlab's
``cleanlab.filter.find_label_issues(labels, pred_probs, return_indices_ranked_by="self_confidence")`` (Northcutt
et al. 2021, confident learning) flags and ranks the images whose given label is least likely. Flagged is not
proven wrong: some are hard pictures, or not of any class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from imgclf.data.images import ImageSpec
from imgclf.data.samples import Dataset, Samples
from imgclf.data.storage import sha256_of
from imgclf.errors import ImgclfError, check_positive_int
from imgclf.features.extract import cached_features, feature_cache_key, file_shas, weights_fingerprint
from imgclf.features.store import image_features
from imgclf.models import create_model
from imgclf.models.backbones import get_backbone
from imgclf.models.transfer import split_at_features
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.sources import samples_dataset
from imgclf.runs.record import MODEL_FILE, load_model_file, read_run
from imgclf.settings.resolved import BACKBONE_INTERPOLATION
from imgclf.training.inputs import load_data
from imgclf.unknown.calibrate import output_layer

#: Folds of the cross-validation that gives every image an out-of-fold probability.
FOLDS = 5
#: Inverse regularisation strength of the logistic regression (scikit-learn's ``C``): 3 was best of 0.3-30 at 5 %
#: planted flips (bench/README.md).
C = 3.0
#: Cross-validations (each with other folds) whose out-of-fold probabilities are averaged: 3 raised precision and
#: recall at 5 % planted flips from 0.912 / 0.893 to 0.913 / 0.913 (bench/README.md).
REPEATS = 3


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


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = 0,
                              repeats: int = REPEATS) -> np.ndarray:  # fmt: skip
    """Class probabilities float64 ``(n, n_classes)`` of every row from a logistic regression that did not see it
    (stratified ``folds``-fold ``cross_val_predict`` on :func:`power_normalise`'d ``features``), averaged over
    ``repeats`` cross-validations with other folds (seeds ``seed``, ``seed + 1``, ...).

    Raises:
        ImgclfError: a class with fewer than ``folds`` images.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = np.bincount(labels)
    if counts.min() < folds:
        raise ImgclfError(f"finding wrong labels needs at least {folds} images in every class. "
                          f"Received: {counts.min()} in class {int(counts.argmin())}")  # fmt: skip
    x = power_normalise(features)
    model = LogisticRegression(C=C, max_iter=3000)
    return np.mean([cross_val_predict(model, x, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed + r),
                                      method="predict_proba") for r in range(repeats)], axis=0)  # fmt: skip


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


def pooled_extractor(extractor):
    """A ``keras.Model`` from uint8 images to float32 ``(batch, 2c)`` features: ``extractor``'s maps
    ``(batch, h, w, c)`` pooled by mean and by max over height and width (or its ``(batch, d)`` features as they
    are, then ``(batch, d)``), averaged over the image and its left-right mirror."""
    import keras

    images = keras.Input(extractor.input_shape[1:], dtype=extractor.inputs[0].dtype, name="images")

    def pooled(maps):
        if len(maps.shape) == 2:
            return maps
        return keras.ops.concatenate([keras.ops.mean(maps, axis=(1, 2)), keras.ops.max(maps, axis=(1, 2))], axis=-1)

    both = pooled(extractor(images)) + pooled(extractor(keras.ops.flip(images, axis=2)))
    return keras.Model(images, both / 2.0, name="judge")


def backbone_judge(backbone: str, weights: str | os.PathLike | None, num_classes: int):
    """``(build, image, description)``: a function building a pretrained backbone's cut layer as the judge (only
    called when its features are not cached), the :class:`~imgclf.data.images.ImageSpec` it reads images with, and
    what its features depend on (for the cache).

    Raises:
        ImgclfError: an unknown backbone, or a weights file that does not exist.
    """
    spec = get_backbone(backbone)
    image = ImageSpec(spec.default_size, "rgb", BACKBONE_INTERPOLATION)
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise ImgclfError(f"weights must be 'imagenet' or a weights file. Received: {str(weights)!r} (no such file)")

    def build():
        model = create_model(backbone, image.input_shape, num_classes, "categorical", pretrained=weights,
                             head="gap", dropout=0.0)  # fmt: skip
        return split_at_features(model)[0]

    return build, image, [backbone, weights_fingerprint(None if weights is None else str(weights))]


def run_judge(run: str | os.PathLike):
    """``(build, image, description, classes)``: a function building a trained run's model up to its penultimate
    features (the output layer's input) as the judge, the run's image settings, what the features depend on (the
    model file's SHA-256), and its class names.

    Raises:
        ImgclfError: not a run folder or an unreadable record; when ``build`` is called, an unreadable model or one
            imgclf did not build (no output layer).
    """
    folder, record = read_run(run)

    def build():
        import keras

        model = load_model_file(folder / MODEL_FILE)
        layer = output_layer(model)
        if layer is None:
            raise ImgclfError(f"the model of {str(run)!r} has no imgclf output layer: it cannot judge labels.")
        return keras.Model(model.inputs[0], layer.input, name="penultimate")

    try:
        digest = sha256_of(folder / MODEL_FILE)
    except OSError as exc:
        raise ImgclfError(f"cannot read the model of {str(run)!r}: {exc.strerror or exc}") from None
    return build, record.image, ["run", digest], tuple(record.classes)


def judge_features(dataset: Dataset, build, image: ImageSpec, description: list, batch_size: int = 32):
    """The :func:`pooled_extractor` features, by the judge ``build()`` makes, of every readable training and
    validation image, cached on disk under a key of ``description``, the pooling and the images (``build`` is
    called only when the cache has none).

    Returns:
        ``(features float32 (n, d), labels int (n,), paths, splits, skipped, from_cache)``.
    """
    skipped = SkippedFiles()
    parts = [(name, s) for name, s in (("train", dataset.train), ("validation", dataset.validation)) if s is not None]

    def stream(samples: Samples):  # in-order batches: of a split, or of the pictures the per-image store lacks
        return samples_dataset(samples, image=image, class_mode="sparse", num_classes=dataset.num_classes,
                               batch_size=batch_size, cache="none", skipped=skipped)  # fmt: skip

    streams = [stream(s) for _, s in parts]
    description = ["suspects", "mean+max, mirrored", *description, list(image.input_shape), image.interpolation]
    shas = file_shas(dataset)
    key = feature_cache_key(description, dataset, shas)
    by_image = image_features(dataset, description, shas, "sparse", stream)
    train, val, from_cache = cached_features(key, lambda: pooled_extractor(build()), streams[0],
                                             streams[1] if len(streams) > 1 else None, skipped,
                                             by_image=by_image)  # fmt: skip
    features, labels, paths, splits = [], [], [], []
    for (name, samples), (f, y) in zip(parts, [train, val]):
        kept = [p for p in samples.paths if p not in skipped]
        features.append(f)
        labels.append(np.asarray(y).reshape(-1).astype(int))
        paths += kept
        splits += [name] * len(kept)
    return np.concatenate(features), np.concatenate(labels), paths, splits, skipped, from_cache


def backbone_features(dataset: Dataset, backbone: str, weights: str | os.PathLike | None, batch_size: int = 32):
    """:func:`judge_features` of a pretrained backbone (:func:`backbone_judge`)."""
    build, image, description = backbone_judge(backbone, weights, dataset.num_classes)
    return judge_features(dataset, build, image, description, batch_size)


def find_label_issues(data, *, backbone: str = "squeezenet1_1", weights: str | os.PathLike | None = None,
                      run: str | os.PathLike | None = None, folds: int = FOLDS,
                      seed: int = 0) -> SuspectReport:  # fmt: skip
    """The images of ``dataset`` (training and validation) whose folder is probably the wrong class.

    Args:
        data: a dataset folder (any layout ``imgclf train`` reads), a named dataset, or a loaded
            :class:`~imgclf.data.samples.Dataset` (:func:`imgclf.load_folder`); a folder without a validation
            split is judged whole.
        backbone: a pretrained backbone (``imgclf backbones``) whose features judge the images.
        weights: its weights file, ``imagenet`` (downloaded once), or ``None`` for random weights (tests only).
        run: a run folder whose trained model judges instead (its penultimate features, its image settings);
            ``backbone`` and ``weights`` are then unused. The run's model has seen its training images' labels,
            wrong ones too, so its features can hide the errors it learned: the backbone is the safer default.
        folds: cross-validation folds (each class needs at least as many images).
        seed: seed of the folds.

    Returns:
        A :class:`SuspectReport`: the flagged images, most likely wrong first.

    Raises:
        ImgclfError: unusable data, an unknown backbone, unusable weights, an unusable run or one trained on other
            classes, a class with fewer than ``folds`` images, or cleanlab missing.
    """
    folds = check_positive_int("folds", folds)
    dataset = load_data(data, None, validation_split=0.0, seed=seed, label_pattern=None, label_column="label")
    if run is not None:
        build, image, description, classes = run_judge(run)
        if tuple(classes) != tuple(dataset.class_names):
            raise ImgclfError(f"the run {str(run)!r} was trained on classes {list(classes)}; the data has "
                              f"{list(dataset.class_names)}. Expected the same classes.")  # fmt: skip
    else:
        build, image, description = backbone_judge(backbone, weights, dataset.num_classes)
    features, labels, paths, splits, skipped, from_cache = judge_features(dataset, build, image, description)
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
           "power_normalise", "pooled_extractor", "backbone_judge", "run_judge", "judge_features",
           "backbone_features"]  # fmt: skip
