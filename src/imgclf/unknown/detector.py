"""Honest predictions: temperature scaling, calibration error, and an out-of-distribution ("unknown") score.

Everything here is NumPy on arrays a model already produced: ``features`` (the input of the output layer,
float32 ``(n, d)``) and the output layer's ``kernel`` ``(d, c)`` and ``bias`` ``(c,)`` (``c`` = 1 for a binary
model's sigmoid, else the number of classes). Nothing imports TensorFlow, so an exported model scores images
without it.

Sources:

- Temperature scaling: Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017 — one
  scalar ``T`` dividing the logits, fitted by minimising the negative log-likelihood on validation data; expected
  calibration error (ECE) over 15 equal-width confidence bins, as in that paper.
- Scores (higher = more unlike the training images):
  ``msp`` — minus the maximum softmax probability (Hendrycks & Gimpel, ICLR 2017);
  ``energy`` — minus ``logsumexp`` of the logits (Liu, Wang, Owens, Li, NeurIPS 2020);
  ``knn`` — distance to the k-th nearest training feature after L2 normalisation (Sun, Ming, Zhu, Li, ICML 2022);
  ``mahalanobis`` — smallest Mahalanobis distance to a class mean under one shared covariance (Lee, Lee, Lee, Shin,
  NeurIPS 2018), the covariance estimated with Ledoit-Wolf shrinkage (scikit-learn) as there are few images.
- The threshold is the ``1 - false_alarm_rate`` quantile of the validation images' scores: about that share of
  images like the training set is called unknown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclf.errors import ImgclfError, check_one_of
from imgclf.settings import OOD_METHODS

#: OOD scoring methods, in the order they are reported.
METHODS = OOD_METHODS  # the ood_method setting's declared choices
#: Equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15).
ECE_BINS = 15
#: Neighbour whose distance is the ``knn`` score (Sun et al. 2022 use k = 50 of 50,000 CIFAR-10 images; the
#: figure here was measured on cats_and_dogs_filtered, see bench/README.md).
KNN_K = 5
#: Temperatures searched (log-uniform bounds).
T_BOUNDS = (0.05, 20.0)


def logits_of(features: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Output-layer logits float64 ``(n, c)`` of penultimate ``features`` ``(n, d)``."""
    return np.asarray(features, np.float64) @ np.asarray(kernel, np.float64) + np.asarray(bias, np.float64)


def _as_softmax_logits(logits: np.ndarray) -> np.ndarray:
    """A binary model's one logit ``z`` as the two softmax logits ``[0, z]`` (same probabilities)."""
    return np.concatenate([np.zeros_like(logits), logits], axis=1) if logits.shape[1] == 1 else logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities ``(n, classes)`` of logits ``(n, c)`` (a binary model's sigmoid as two columns)."""
    z = _as_softmax_logits(np.asarray(logits, np.float64))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of integer ``labels`` ``(n,)`` under ``softmax(logits / temperature)``."""
    z = _as_softmax_logits(np.asarray(logits, np.float64)) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), np.asarray(labels, int)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` minimising the validation NLL of ``softmax(logits / T)`` (Guo et al. 2017), searched
    over :data:`T_BOUNDS` on a log scale (SciPy's bounded Brent method).

    Raises:
        ImgclfError: no images, or labels and logits of different lengths.
    """
    from scipy.optimize import minimize_scalar

    if len(logits) == 0 or len(logits) != len(labels):
        raise ImgclfError(f"temperature scaling needs validation images with labels. Received: {len(logits)} images")
    low, high = np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1])
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))), bounds=(low, high),
        method="bounded", options={"xatol": 1e-4},
    )  # fmt: skip
    return float(np.exp(result.x))


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: over ``bins`` equal-width bins of confidence (the top probability), the image-weighted mean gap between
    accuracy and mean confidence (Guo et al. 2017, eq. 3). ``proba`` ``(n, classes)``, ``labels`` int ``(n,)``."""
    return reliability(proba, labels, bins)["ece"]


def reliability(proba: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """The reliability diagram's numbers: per bin ``count``, ``confidence`` and ``accuracy`` (``None`` for an
    empty bin), the bin ``edges``, and ``ece``."""
    proba, labels = np.asarray(proba, np.float64), np.asarray(labels, int)
    confidence, correct = proba.max(axis=1), (proba.argmax(axis=1) == labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if n:
            ece += n / len(labels) * abs(correct[mask].mean() - confidence[mask].mean())
        rows.append({"count": n, "confidence": float(confidence[mask].mean()) if n else None,
                     "accuracy": float(correct[mask].mean()) if n else None})  # fmt: skip
    return {"edges": edges.tolist(), "bins": rows, "ece": float(ece)}


def _normalise(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, np.float32)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


@dataclass
class OodDetector:
    """What a run keeps to score new images (``ood.npz``), and the threshold of each method.

    Attributes:
        method: the method ``unknown`` is decided by (one of :data:`METHODS`).
        thresholds: ``{method: score}`` above which an image is unknown (chosen on validation images).
        false_alarm_rate: the share of validation images above the threshold (the target; default 0.05).
        kernel, bias: the output layer's weights float32 ``(d, c)``, ``(c,)`` (temperature already applied).
        reference: L2-normalised training features float16 ``(n, d)`` (``knn``).
        means: class means of the training features float32 ``(classes, d)`` (``mahalanobis``).
        precision: inverse of the shared covariance float32 ``(d, d)`` (``mahalanobis``).
        k: the neighbour of ``knn``.
    """

    method: str
    kernel: np.ndarray
    bias: np.ndarray
    reference: np.ndarray
    means: np.ndarray
    precision: np.ndarray
    thresholds: dict = field(default_factory=dict)
    false_alarm_rate: float = 0.05
    k: int = KNN_K

    @classmethod
    def fit(cls, train_features: np.ndarray, train_labels: np.ndarray, kernel: np.ndarray, bias: np.ndarray,
            method: str = "knn", k: int = KNN_K) -> OodDetector:  # fmt: skip
        """Keep the training features' statistics (thresholds come from :meth:`set_thresholds`).

        Args:
            train_features: penultimate features float32 ``(n, d)`` of the training images (unaugmented).
            train_labels: their classes, int ``(n,)``.
            kernel: the output layer's kernel float32 ``(d, outputs)`` (temperature applied).
            bias: its bias float32 ``(outputs,)``.
            method: the deciding method, one of :data:`METHODS`.
            k: the ``knn`` neighbour (at most ``n``).

        Raises:
            ImgclfError: an unknown method, or no training features.
        """
        from sklearn.covariance import LedoitWolf

        check_one_of("ood_method", method, METHODS)
        train_features, train_labels = np.asarray(train_features, np.float32), np.asarray(train_labels, int)
        if len(train_features) < 2:
            raise ImgclfError(f"an OOD detector needs training images. Received: {len(train_features)}")
        classes = int(max(train_labels.max() + 1, kernel.shape[1] if kernel.shape[1] > 1 else 2))
        means = np.stack([train_features[train_labels == c].mean(axis=0) if (train_labels == c).any()
                          else train_features.mean(axis=0) for c in range(classes)])  # fmt: skip
        centred = train_features - means[train_labels]
        precision = LedoitWolf(assume_centered=True).fit(centred).precision_
        return cls(method, np.asarray(kernel, np.float32), np.asarray(bias, np.float32),
                   _normalise(train_features).astype(np.float16), means.astype(np.float32),
                   precision.astype(np.float32), k=int(min(k, len(train_features))))  # fmt: skip

    def scores(self, features: np.ndarray, method: str | None = None) -> np.ndarray:
        """OOD scores float64 ``(n,)`` of penultimate ``features`` ``(n, d)``: higher = more unlike the training
        images. ``method`` defaults to :attr:`method`."""
        method = check_one_of("ood_method", method or self.method, METHODS)
        features = np.asarray(features, np.float32)
        if method in ("msp", "energy"):
            logits = _as_softmax_logits(logits_of(features, self.kernel, self.bias))
            if method == "msp":
                return -softmax(logits).max(axis=1)
            top = logits.max(axis=1, keepdims=True)
            return -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))
        if method == "knn":
            reference, query, kth = self.reference.astype(np.float32).T, _normalise(features), []
            for start in range(0, len(query), 256):  # (256, n_train) cosine similarities at a time
                similarity = query[start : start + 256] @ reference
                kth.append(-np.partition(-similarity, self.k - 1, axis=1)[:, self.k - 1])
            kth = np.concatenate(kth) if kth else np.zeros(0, np.float32)
            return np.sqrt(np.maximum(2.0 - 2.0 * kth.astype(np.float64), 0.0))
        distances = []
        for mean in self.means:  # squared Mahalanobis distance to each class mean
            diff = (features - mean).astype(np.float64)
            distances.append(np.einsum("nd,nd->n", diff @ self.precision.astype(np.float64), diff))
        return np.min(distances, axis=0)

    def set_thresholds(self, validation_features: np.ndarray, false_alarm_rate: float = 0.05) -> dict:
        """Choose each method's threshold so that ``false_alarm_rate`` of the validation images score above it.

        Returns:
            :attr:`thresholds`.

        Raises:
            ImgclfError: ``false_alarm_rate`` outside (0, 1) or no validation images.
        """
        ok = not isinstance(false_alarm_rate, bool) and isinstance(false_alarm_rate, (int, float))
        if not ok or not 0 < false_alarm_rate < 1:
            raise ImgclfError(f"ood_false_alarm_rate must be a float in (0, 1). Received: {false_alarm_rate!r}")
        if len(validation_features) == 0:
            raise ImgclfError("choosing the unknown threshold needs validation images; this dataset has none.")
        self.false_alarm_rate = float(false_alarm_rate)
        self.thresholds = {
            m: float(np.quantile(self.scores(validation_features, m), 1.0 - false_alarm_rate, method="higher"))
            for m in METHODS
        }
        return self.thresholds

    def unknown(self, scores: np.ndarray) -> np.ndarray:
        """bool ``(n,)``: the scores (of :attr:`method`) above its threshold."""
        return np.asarray(scores) > self.thresholds[self.method]

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (``.npz``; no pickled objects, so it loads with ``allow_pickle=False``)."""
        from imgclf import _io

        path = Path(path)
        names = list(self.thresholds)
        with _io.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, method=np.array(self.method), kernel=self.kernel, bias=self.bias, reference=self.reference,
                         means=self.means, precision=self.precision, threshold_methods=np.array(names),
                         thresholds=np.array([self.thresholds[m] for m in names], np.float64),
                         false_alarm_rate=np.array(self.false_alarm_rate), k=np.array(self.k))  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> OodDetector:
        """Read what :meth:`save` wrote.

        Raises:
            ImgclfError: the file is not such an archive.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                thresholds = dict(zip(z["threshold_methods"].tolist(), z["thresholds"].tolist()))
                detector = cls(str(z["method"]), z["kernel"], z["bias"], z["reference"], z["means"], z["precision"],
                               thresholds, float(z["false_alarm_rate"]), int(z["k"]))  # fmt: skip
        except (OSError, KeyError, ValueError, TypeError, EOFError) as exc:
            raise ImgclfError(f"cannot read the OOD detector {str(path)!r}: {str(exc)[:200]}") from None
        problem = detector.problem()
        if problem:
            raise ImgclfError(f"the OOD detector {str(path)!r} is not one imgclf wrote: {problem}")
        return detector

    def problem(self, features: int | None = None, outputs: int | None = None) -> str | None:
        """What is wrong with this detector's arrays (shapes that disagree, a threshold that is not a finite
        number, ``k`` out of range), or ``None``. ``features`` and ``outputs``, when given, are the model's
        penultimate width and output units, which the arrays must match."""
        kernel, reference = np.asarray(self.kernel), np.asarray(self.reference)
        if self.method not in METHODS:
            return f"method must be one of {list(METHODS)}. Received: {self.method!r}"
        if kernel.ndim != 2 or np.asarray(self.bias).shape != (kernel.shape[1],):
            return f"kernel {kernel.shape} and bias {np.asarray(self.bias).shape} do not make an output layer"
        d = kernel.shape[0]
        if reference.ndim != 2 or reference.shape[1] != d or len(reference) < 1:
            return f"reference features {reference.shape} do not match the kernel's {d} features"
        if np.asarray(self.means).ndim != 2 or np.asarray(self.means).shape[1] != d:
            return f"class means {np.asarray(self.means).shape} do not match the kernel's {d} features"
        if np.asarray(self.precision).shape != (d, d):
            return f"precision {np.asarray(self.precision).shape} is not ({d}, {d})"
        if not 1 <= self.k <= len(reference):
            return f"k must be in [1, {len(reference)}] (the reference features). Received: {self.k}"
        threshold = self.thresholds.get(self.method)
        if not isinstance(threshold, float) or not np.isfinite(threshold):
            return f"the {self.method} threshold must be a finite number. Received: {threshold!r}"
        if not 0 < self.false_alarm_rate < 1:
            return f"false_alarm_rate must be in (0, 1). Received: {self.false_alarm_rate!r}"
        if features is not None and features != d:
            return f"it scores {d} features; the model gives {features}"
        if outputs is not None and outputs != kernel.shape[1]:
            return f"its output layer has {kernel.shape[1]} units; the model {outputs}"
        return None


def ood_metrics(in_scores: np.ndarray, out_scores: np.ndarray) -> dict:
    """How well scores tell in-distribution images (negatives) from others (positives): ``auroc`` (scikit-learn's
    ``roc_auc_score``) and ``fpr_at_95_tpr`` — the share of other images accepted as in-distribution when 95 % of
    the in-distribution images are (the usual FPR95 of the OOD literature)."""
    from sklearn.metrics import roc_auc_score

    in_scores, out_scores = np.asarray(in_scores, np.float64), np.asarray(out_scores, np.float64)
    truth = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    threshold = np.quantile(in_scores, 0.95, method="higher")
    return {
        "auroc": float(roc_auc_score(truth, np.r_[in_scores, out_scores])),
        "fpr_at_95_tpr": float((out_scores <= threshold).mean()),
        "in_images": int(len(in_scores)),
        "out_images": int(len(out_scores)),
    }
