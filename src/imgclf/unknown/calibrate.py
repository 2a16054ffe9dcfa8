"""After training: fit a temperature and an out-of-distribution detector on the validation images.

The temperature ``T`` (Guo et al. 2017, see :mod:`imgclf.unknown.detector`) is folded into the trained model itself: the
output layer's kernel and bias are divided by ``T``, which divides its logits by ``T``. So ``model.keras``, every
export, the CLI and the web app give the calibrated probabilities with no extra step, and the predicted classes
do not change. The detector (``ood.npz``) keeps the training images' penultimate features and statistics, and a
threshold per method chosen on the validation images; ``calibration.json`` records the figures.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import keras
import numpy as np

from imgclf import _io
from imgclf.models.precision import OUTPUT_LAYER
from imgclf.runs.record import CALIBRATION_FILE, OOD_FILE
from imgclf.unknown.detector import OodDetector, fit_temperature, logits_of, reliability, softmax

#: Validation images below which the temperature is not fitted (left at 1). Nor is it when every validation image is
#: classified right: the likelihood then grows without end as the probabilities sharpen (temperature towards 0),
#: which says nothing about images the model gets wrong.
MIN_CALIBRATION_IMAGES = 30


def output_layer(model: keras.Model):
    """The model's output ``Dense`` layer (named :data:`~imgclf.models.precision.OUTPUT_LAYER`), or ``None`` for a
    model imgclf did not build."""
    try:
        layer = model.get_layer(OUTPUT_LAYER)
    except ValueError:
        return None
    return layer if isinstance(layer, keras.layers.Dense) and layer.use_bias else None


#: Feature models already built, by model (built once: each new Keras model traces its predict function anew).
_FEATURE_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def feature_model(model: keras.Model) -> keras.Model | None:
    """A model from the same inputs to ``(probabilities, penultimate features)``: the features are the input of
    the output layer, float32 ``(batch, d)``. ``None`` when the model has no imgclf output layer."""
    if model in _FEATURE_MODELS:
        return _FEATURE_MODELS[model]
    layer = output_layer(model)
    if layer is None:
        return None
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs  # the structure the model is called with
    _FEATURE_MODELS[model] = keras.Model(inputs, [model.outputs[0], layer.input])
    return _FEATURE_MODELS[model]


def target_labels(targets: np.ndarray) -> np.ndarray:
    """Integer classes of encoded targets (binary ``(n, 1)``, one-hot ``(n, k)`` or sparse ``(n,)``)."""
    targets = np.asarray(targets)
    if targets.ndim == 2 and targets.shape[1] > 1:
        return targets.argmax(axis=1)
    return np.rint(targets.reshape(-1)).astype(int)


def collect_features(features: keras.Model, ds) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features float32 ``(n, d)`` and integer labels ``(n,)`` of a labelled dataset of
    ``(images, targets)`` batches."""
    feats, labels = [], []
    for images, targets in ds:
        feats.append(np.asarray(features.predict_on_batch(images)[1], np.float32))
        labels.append(target_labels(targets))
    if not feats:
        return np.zeros((0, features.outputs[1].shape[-1]), np.float32), np.zeros(0, int)
    return np.concatenate(feats), np.concatenate(labels)


#: Features or weights beyond this size come from a diverged model: their squares (covariances) overflow float32.
DIVERGED = 1e18


def _usable(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).all() and (np.abs(values).max(initial=0.0) < DIVERGED))


def calibrate(model: keras.Model, train_in_order, validation, method: str = "knn", false_alarm_rate: float = 0.05,
              run: str | Path | None = None) -> tuple[dict, OodDetector] | None:  # fmt: skip
    """Fit the temperature (folded into ``model``'s output layer, in place) and the OOD detector.

    Args:
        model: the trained float32 inference model (uint8 images in, probabilities out).
        train_in_order: the training images, unaugmented, as ``(images, targets)`` batches.
        validation: the validation batches.
        method: the OOD method that decides ``unknown`` (see :data:`imgclf.unknown.detector.METHODS`).
        false_alarm_rate: share of validation images the threshold calls unknown.
        run: a run folder to write ``calibration.json`` and ``ood.npz`` into.

    Returns:
        ``(record, detector)``, or ``None`` when the model has no imgclf output layer, no validation image
        can be read, or its features or weights are not finite or beyond :data:`DIVERGED` (training diverged).
        ``record`` holds ``temperature``, ``ece_before``/``ece_after`` (15 bins), ``nll_before``/
        ``nll_after``, the reliability diagram's bins before and after, and the detector's settings.

    Raises:
        ImgclfError: an unknown method or a false-alarm rate outside (0, 1).
    """
    features = feature_model(model)
    if features is None or validation is None:
        return None
    f_val, y_val = collect_features(features, validation)
    f_train, y_train = collect_features(features, train_in_order)
    return calibrate_features(model, (f_val, y_val), (f_train, y_train), method, false_alarm_rate, run)


def calibrate_features(model: keras.Model, validation: tuple, train: tuple, method: str = "knn",
                       false_alarm_rate: float = 0.05, run: str | Path | None = None):  # fmt: skip
    """:func:`calibrate` from penultimate features already computed: ``validation`` and ``train`` are
    ``(features float32 (n, d), integer labels (n,))``, the input of ``model``'s output layer (e.g. from the cached
    backbone features training read: one pass over the images serves both). Same returns (``(record, detector)`` or
    ``None``) and errors."""
    from imgclf.unknown.detector import negative_log_likelihood

    (f_val, y_val), (f_train, y_train) = validation, train
    if output_layer(model) is None or len(f_val) < 2 or len(f_train) < 2:
        return None
    layer = output_layer(model)
    kernel, bias = (np.asarray(w, np.float64) for w in layer.get_weights())
    if not all(_usable(x) for x in (f_val, f_train, kernel, bias)):
        return None  # training diverged (a learning rate far too high): nothing to calibrate; evaluation says so
    logits = logits_of(f_val, kernel, bias)
    errors = int((softmax(logits).argmax(axis=1) != y_val).sum())
    fitted = len(y_val) >= MIN_CALIBRATION_IMAGES and errors > 0
    temperature = fit_temperature(logits, y_val) if fitted else 1.0
    layer.set_weights([(kernel / temperature).astype(np.float32), (bias / temperature).astype(np.float32)])
    kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
    detector = OodDetector.fit(f_train, y_train, kernel, bias, method)
    detector.set_thresholds(f_val, false_alarm_rate)
    before, after = reliability(softmax(logits), y_val), reliability(softmax(logits / temperature), y_val)
    record = {
        "temperature": temperature,
        "temperature_fitted": fitted,  # too few validation images, or none misclassified: left at 1
        "validation_errors": errors,
        "validation_images": int(len(y_val)),
        "ece_before": before["ece"], "ece_after": after["ece"],
        "nll_before": negative_log_likelihood(logits, y_val),
        "nll_after": negative_log_likelihood(logits, y_val, temperature),
        "reliability_before": before, "reliability_after": after,
        "ood": {"method": detector.method, "thresholds": detector.thresholds,
                "false_alarm_rate": detector.false_alarm_rate, "k": detector.k,
                "features": int(f_train.shape[1]), "reference_images": int(len(f_train))},
    }  # fmt: skip
    if run is not None:
        _io.write_json(Path(run) / CALIBRATION_FILE, record)
        detector.save(Path(run) / OOD_FILE)
    return record, detector
