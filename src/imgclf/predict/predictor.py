"""Inference: a trained model with what it needs to read images, and predictions from files, folders, pixel
CSVs and arrays.

A :class:`Predictor` is what a run folder holds for prediction — the float32 Keras model (``model.keras``,
which takes raw uint8 pixels and rescales them itself), the class names in output order, and how images are
read (an :class:`~imgclf.data.images.ImageSpec`: size, colour mode, filter). Images are read by the same
:func:`imgclf.data.images.load_image` as in training. ``ImageClassifier.predict_proba``, ``imgclf predict``,
evaluation, the report and Grad-CAM all predict through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from imgclf import _io
from imgclf.data.images import ImageParts, ImageSpec
from imgclf.data.inputs import expand_image_paths, input_kind
from imgclf.data.packed import load_packed
from imgclf.errors import ImgclfError
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.runs import record as runfiles
from imgclf.unknown.detector import OodDetector

#: Images per forward pass when predicting.
PREDICT_BATCH_SIZE = 32


def packed_names(path) -> list[str]:
    """The images of a packed folder (training, then validation split), by the paths they were packed from."""
    dataset = load_packed(path)
    return [n for s in (dataset.train, dataset.validation) if s is not None for n in s.paths]


def packed_images(path) -> np.ndarray:
    """Every image of a packed folder, in :func:`packed_names` order: uint8 ``(n, height, width, channels)``."""
    from imgclf.pipeline.records import read_images

    dataset = load_packed(path)
    return np.concatenate([read_images(s.records) for s in (dataset.train, dataset.validation) if s is not None])


@dataclass(frozen=True)
class Predictions:
    """What :meth:`Predictor.predict` gives for ``n`` images.

    Attributes:
        probabilities: float32 ``(n, len(classes))``, rows summing to 1 (calibrated when the run is); a row of NaN
            for a file that cannot be decoded.
        classes: class names, column order.
        skipped: the files that could not be decoded, with the reasons.
        ood_score: float64 ``(n,)``, how unlike the training images each is (higher = more unlike; see
            :class:`imgclf.unknown.detector.OodDetector`), or ``None`` without a detector.
        unknown: bool ``(n,)``, the score above the detector's threshold, or ``None`` without a detector.
        features: float32 ``(n, d)`` penultimate features when asked for, else ``None``.
    """

    probabilities: np.ndarray
    classes: tuple[str, ...]
    skipped: SkippedFiles
    ood_score: np.ndarray | None = None
    unknown: np.ndarray | None = None
    features: np.ndarray | None = None

    def labels(self, unknown_label=None) -> np.ndarray:
        """The predicted class of each image, array ``(n,)`` of class names; ``""`` for a file that cannot be
        decoded. With ``unknown_label`` (e.g. ``"unknown"``), images the run's OOD detector flags get that label."""
        proba = self.probabilities
        bad = np.isnan(proba).any(axis=1)
        labels = np.asarray(self.classes)[np.nan_to_num(proba, nan=-1).argmax(axis=1)]
        flagged = self.unknown if unknown_label is not None and self.unknown is not None else bad & False
        if bad.any() or flagged.any():
            labels = labels.astype(object)
            labels[flagged], labels[bad] = unknown_label, ""
            labels = labels.astype(str) if isinstance(unknown_label, str) or not flagged.any() else labels
        return labels


@runtime_checkable
class ScoringModel(Protocol):
    """What a :class:`Predictor` scores with: uint8 images ``(batch, height, width, channels)`` (an array, or a
    dataset of such batches) in, float32 probabilities ``(batch, 1)`` (binary) or ``(batch, n_classes)`` out.

    A structural type (PEP 544): imgclf's Keras models (``keras.Model``: ``model.keras``) and exports run in their
    own runtimes (:class:`imgclf.deploy.runtime.ExportedModel`) both satisfy it without inheriting from it.
    """

    def predict(self, x, batch_size: int = 32, verbose: int = 0): ...


@runtime_checkable
class ScoresFeatures(Protocol):
    """A :class:`ScoringModel` that can also give the penultimate features, as an export with a second output
    does: ``scoring_model()`` returns a model whose ``predict`` gives ``[probabilities, features]``, or ``None``
    when the export has no features output. (A Keras model gets its features model from
    :func:`imgclf.unknown.calibrate.feature_model` instead.)"""

    def scoring_model(self) -> ScoringModel | None: ...


@dataclass
class Predictor(ImageParts):
    """A trained model and how to feed it.

    Attributes:
        model: a :class:`ScoringModel` (a Keras model or an export) from uint8 ``(batch, height, width, channels)``
            to probabilities float32 ``(batch, 1)`` (binary: probability of ``classes[1]``) or
            ``(batch, len(classes))``.
        classes: class names, output order.
        class_mode: ``binary``, ``categorical`` or ``sparse``.
        image: how images are read for it (size, colour mode, resize filter; ``target_size``, ``color_mode``
            and ``interpolation`` are its parts).
        batch_size: images per forward pass.
    """

    model: ScoringModel
    classes: tuple[str, ...]
    class_mode: str
    image: ImageSpec
    batch_size: int = PREDICT_BATCH_SIZE
    record: runfiles.RunConfig | None = None  # the run's record, when loaded from a run folder
    ood: OodDetector | None = None  # the run's out-of-distribution detector (ood.npz), if it has one
    calibration: dict | None = None  # the run's calibration.json, if it has one
    _features: object = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_run(cls, path: str | os.PathLike) -> Predictor:
        """Load ``model.keras``, ``classes.json`` and ``config.yaml`` of a run folder (or saved classifier).

        Raises:
            ImgclfError: not a run folder, unreadable files, or a model whose outputs do not match the classes.
        """
        folder, record = runfiles.read_run(path)
        model = runfiles.load_model_file(folder / runfiles.MODEL_FILE)
        resolved = record.resolved
        ood = OodDetector.load(folder / runfiles.OOD_FILE) if (folder / runfiles.OOD_FILE).is_file() else None
        calibration = _io.read_json(folder / runfiles.CALIBRATION_FILE) if ood is not None else None
        predictor = cls(
            model, tuple(record.classes), resolved["class_mode"], record.image, record=record,
            ood=ood, calibration=calibration,
        )  # fmt: skip
        outputs = model.output_shape[-1]
        expected = 1 if predictor.class_mode == "binary" else len(predictor.classes)
        if outputs != expected:
            raise ImgclfError(
                f"the model in {str(path)!r} has {outputs} output(s) but classes.json names "
                f"{len(predictor.classes)} classes: expected {expected}."
            )
        return predictor

    def load_images(self, paths, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Read image files exactly as training does (:func:`imgclf.data.images.load_image`).

        Returns:
            uint8 ``(n, height, width, channels)`` at ``target_size``.

        Raises:
            ImgclfError: no image is given, or a file cannot be decoded (named in the message).
        """
        files = expand_image_paths(paths)
        if not files:
            raise ImgclfError("no image files given.")
        return np.stack([self.image.read(p, crop) for p in files])

    def _scoring_model(self):
        """The Keras model with a second output, the penultimate features (built once), or ``None``."""
        if self.ood is None:
            return None
        if self._features is None and isinstance(self.model, ScoresFeatures):  # an export (imgclf.deploy.runtime)
            self._features = self.model.scoring_model()
        elif self._features is None:  # a Keras model
            from imgclf.unknown.calibrate import feature_model

            self._features = feature_model(self.model)
        return self._features

    def _forward(self, data, features: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """``(probabilities, penultimate features float32 (n, d) or None)``; features only with an OOD detector."""
        model = self._scoring_model() if features else None
        model = model if model is not None else self.model
        two = model is not self.model
        if isinstance(data, np.ndarray) and hasattr(model, "predict_on_batch"):  # a Keras model
            # In memory: one compiled call per batch (``predict_on_batch``; 2.8 ms for one course_small image
            # against ~20 ms for ``predict``, which builds a dataset iterator every call).
            chunks = [data[i : i + self.batch_size] for i in range(0, len(data), self.batch_size)] or [data]
            parts = [model.predict_on_batch(c) for c in chunks]
        else:
            parts = [model.predict(data, batch_size=self.batch_size, verbose=0)]
        out = np.concatenate([np.asarray(p[0] if two else p, np.float32) for p in parts])
        feats = np.concatenate([np.asarray(p[1], np.float32) for p in parts]) if two else None
        if self.class_mode == "binary":
            out = np.concatenate([1.0 - out, out], axis=1)
        return out, feats

    def predict(self, X, *, crop=None, tta: bool = False, features: bool = False) -> Predictions:
        """Score images: the one way to predict (the other methods are conveniences over it).

        Args:
            X: an image file or folder path, a list of them (folders are searched recursively), a pixel CSV
                (one image per row; a label column, if any, is ignored), packed shards (``imgclf pack``), or a
                uint8 array ``(batch, height, width, channels)`` / ``(height, width, channels)`` of 0-255 pixels
                (resized to ``target_size`` if needed).
            crop: box ``(x, y, w, h)`` in pixels cut out of every image file before resizing.
            tta: average the predictions (and features) of 8 flipped and cropped views of each image file
                (:func:`imgclf.pipeline.tta.tta_views`).
            features: keep the penultimate features (what the OOD detector scores) in the result.

        Returns:
            :class:`Predictions`, rows in the order of :func:`expand_image_paths`; a file that cannot be decoded
            gets a row of NaN and is listed in ``skipped`` with the reason (never an exception).

        Raises:
            ImgclfError: a path does not exist, a folder holds no images, an array has the wrong dtype or
                rank, ``crop``/``tta`` given with arrays, a crop box outside an image, or ``features`` asked of
                a model without an OOD detector (trained with ``calibrate=False``, without validation images, or
                with a model imgclf did not build).
        """
        if features and self._scoring_model() is None:
            raise ImgclfError("this model has no out-of-distribution detector (ood.npz): train it with validation "
                              "images and calibrate on.")  # fmt: skip
        out, feats, skipped = self._predict(X, crop, tta)
        scores = self._scores(feats)
        if scores is not None:
            scores[np.isnan(out).any(axis=1)] = np.nan
        unknown = self.ood.unknown(scores) if scores is not None else None
        return Predictions(out, self.classes, skipped, scores, unknown, feats if features else None)

    def predict_proba(self, X, *, crop=None, tta: bool = False) -> np.ndarray:
        """``predict(X, crop=crop, tta=tta).probabilities``: float32 ``(n, len(classes))``, NaN rows for files
        that cannot be decoded (see :meth:`predict`)."""
        return self.predict(X, crop=crop, tta=tta).probabilities

    def _predict(self, X, crop, tta: bool) -> tuple[np.ndarray, np.ndarray | None, SkippedFiles]:
        """``(probabilities, penultimate features or None, skipped)``: see :meth:`predict`."""
        skipped = SkippedFiles()
        kind = input_kind(X)
        if kind == "csv":
            from imgclf.data.pixel_csv import read_pixel_csv

            X, kind = read_pixel_csv(X)[0], "array"
        elif kind == "packed":
            X, kind = packed_images(X), "array"
        elif kind == "paths" and isinstance(X, np.ndarray):  # an array of paths (scikit-learn passes these)
            X = X.tolist()
        if kind == "array":
            if crop is not None or tta:
                raise ImgclfError("crop and tta apply to image files, not to arrays: crop or flip the array yourself.")
            arr = X[None] if X.ndim == 3 else X
            if arr.ndim != 4 or arr.dtype != np.uint8:
                raise ImgclfError(
                    "image arrays must be uint8 of shape (batch, height, width, channels). "
                    f"Received: {arr.dtype} {arr.shape}"
                )
            return (*self._forward(self.image.to_model_input(arr)), skipped)
        paths = expand_image_paths(X)
        if not paths:
            feats = np.zeros((0, self.ood.reference.shape[1]), np.float32) if self.ood is not None else None
            return np.zeros((0, len(self.classes)), np.float32), feats, skipped
        if tta or crop is not None or len(paths) <= self.batch_size:  # a few files: decoded here, no pipeline
            out, feats = self._views_forward(paths, crop, tta, skipped)
        else:
            from imgclf.pipeline.tfdata import image_dataset

            data = image_dataset(
                paths, image=self.image,
                batch_size=self.batch_size, cache=False, skipped=skipped,
            )  # fmt: skip
            out, feats = self._forward(data)
        bad = [i for i, p in enumerate(paths) if p in skipped]
        out[bad] = np.nan
        if feats is not None:
            feats[bad] = np.nan
        return out, feats, skipped

    def _scores(self, feats: np.ndarray | None) -> np.ndarray | None:
        if self.ood is None or feats is None:
            return None
        return self.ood.scores(np.nan_to_num(feats))

    def _views_forward(self, paths, crop, tta: bool, skipped: SkippedFiles) -> tuple[np.ndarray, np.ndarray | None]:
        from imgclf.pipeline.tta import NUM_VIEWS, tta_views

        views = NUM_VIEWS if tta else 1
        stacks = []
        for p in paths:
            try:
                if tta:
                    stacks.append(tta_views(p, self.image, crop))
                else:
                    stacks.append(self.image.load(p, crop)[None])
            except ImgclfError:
                raise
            except Exception as exc:  # noqa: BLE001  (a bad file never stops prediction)
                skipped.add(p, exc)
                stacks.append(np.zeros((views, *self.input_shape), np.uint8))
        out, feats = self._forward(np.concatenate(stacks))
        out = out.reshape(len(paths), views, out.shape[-1]).mean(axis=1)
        if feats is not None:
            feats = feats.reshape(len(paths), views, feats.shape[-1]).mean(axis=1)
        return out, feats

    def save(self, folder: str | os.PathLike) -> None:
        """Write the model into ``folder/model.keras`` (atomically), and the OOD detector and calibration
        figures beside it when there are some."""
        with _io.atomic_path(Path(folder) / runfiles.MODEL_FILE) as tmp:
            self.model.save(tmp)
        if self.ood is not None:
            self.ood.save(Path(folder) / runfiles.OOD_FILE)
        if self.calibration is not None:
            _io.write_json(Path(folder) / runfiles.CALIBRATION_FILE, self.calibration)
