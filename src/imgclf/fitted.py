"""What a fitted :class:`~imgclf.ImageClassifier` does with its model: predict, read images as training did, and
evaluate — all through :class:`imgclf.predict.predictor.Predictor` (a mixin: the estimator itself trains)."""

from __future__ import annotations

import os

import numpy as np

from imgclf.data.folders import Samples, load_eval_samples
from imgclf.errors import ImgclfError
from imgclf.predict.predictor import Predictions, Predictor


class UsesFittedModel:
    """The inference half of :class:`~imgclf.ImageClassifier`: it reads the fitted attributes ``model_``,
    ``classes_``, ``class_mode_``, ``image_``, ``ood_`` and
    ``calibration_``, and changes nothing on the estimator (scikit-learn's ``check_dict_unchanged``)."""

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise ImgclfError("this ImageClassifier is not fitted yet: call fit() or ImageClassifier.load() first.")

    def predictor(self) -> Predictor:
        """The fitted model with how to read images for it (:class:`imgclf.predict.predictor.Predictor`).

        Raises:
            ImgclfError: not fitted.
        """
        self._check_fitted()
        return Predictor(self.model_, tuple(str(c) for c in self.classes_), self.class_mode_, self.image_,
                         ood=getattr(self, "ood_", None), calibration=getattr(self, "calibration_", None))  # fmt: skip

    def load_images(self, paths, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Read image files exactly as training does: uint8 ``(n, height, width, channels)``
        (see :meth:`imgclf.predict.predictor.Predictor.load_images`)."""
        return self.predictor().load_images(paths, crop)

    def predictions(self, X, *, crop: tuple[int, int, int, int] | None = None, tta: bool = False,
                    features: bool = False) -> Predictions:  # fmt: skip
        """Everything the model says of images: probabilities, the files that could not be read, and with the run's
        OOD detector the "unknown" scores (see :meth:`imgclf.predict.predictor.Predictor.predict`).

        Raises:
            ImgclfError: not fitted, or as :meth:`imgclf.predict.predictor.Predictor.predict`.
        """
        return self.predictor().predict(X, crop=crop, tta=tta, features=features)

    def predict_proba(self, X, *, crop: tuple[int, int, int, int] | None = None, tta: bool = False) -> np.ndarray:
        """Class probabilities, float32 ``(n, len(classes_))``; column ``i`` is ``classes_[i]``.

        ``X`` is an image file or folder, a list of them, a pixel CSV, or a uint8 array; ``crop`` and ``tta``
        apply to files. A file that cannot be decoded gets a row of NaN (never an exception; :meth:`predictions`
        says which files and why).

        Raises:
            ImgclfError: not fitted, or as :meth:`imgclf.predict.predictor.Predictor.predict`.
        """
        return self.predictions(X, crop=crop, tta=tta).probabilities

    def predict(self, X, *, crop: tuple[int, int, int, int] | None = None, tta: bool = False,
                unknown_label=None) -> np.ndarray:  # fmt: skip
        """Predicted labels, array ``(n,)`` of ``classes_``' dtype (``""`` for a file that cannot be decoded);
        arguments as in :meth:`predict_proba`. With ``unknown_label`` (e.g. ``"unknown"``), images the run's OOD
        detector flags (``ood_``; see :mod:`imgclf.unknown.detector`) get that label."""
        return self.predictions(X, crop=crop, tta=tta).labels(unknown_label)

    def evaluate(self, data: str | os.PathLike | Samples) -> dict:
        """Loss, accuracy, confusion matrix and per-class precision/recall/F1 on labelled images.

        Args:
            data: a folder (its test or validation split if it has split folders, else all of its class
                folders; see :func:`imgclf.data.folders.load_eval_samples`) or
                :class:`~imgclf.data.folders.Samples` labelled with ``classes_``.

        Returns:
            The dict of :func:`imgclf.evaluation.metrics.classification_metrics`.

        Raises:
            ImgclfError: not fitted, or the folder is unusable or has a class the model lacks.
        """
        from imgclf.evaluation.interpretation import Interpretation

        predictor = self.predictor()
        samples = data if isinstance(data, Samples) else load_eval_samples(data, predictor.classes)
        return Interpretation.from_predictor(predictor, samples).metrics


__all__ = ["UsesFittedModel"]
