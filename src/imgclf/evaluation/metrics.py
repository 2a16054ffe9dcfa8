"""Classification metrics of predicted probabilities (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, log_loss


def classification_metrics(labels: np.ndarray, proba: np.ndarray, class_names) -> dict:
    """Loss, accuracy, confusion matrix and per-class precision/recall/F1.

    Args:
        labels: true class indices, shape ``(n,)`` int.
        proba: predicted probabilities, shape ``(n, classes)`` float (rows sum to 1).
        class_names: the ``classes`` label names, in label order.

    Returns:
        A JSON-ready dict: ``n``, ``loss`` (cross-entropy, probabilities clipped to
        [1e-7, 1 - 1e-7] as Keras does), ``accuracy``, ``class_names``, ``confusion_matrix``
        (rows true class, columns predicted class, as in ``sklearn.metrics.confusion_matrix``),
        ``per_class`` (``{name: {precision, recall, f1, support}}``), ``macro_avg`` and
        ``weighted_avg``.
    """
    labels = np.asarray(labels)
    proba = np.asarray(proba, dtype=np.float64)
    k = len(class_names)
    predicted = proba.argmax(axis=1)
    clipped = np.clip(proba, 1e-7, 1 - 1e-7)
    loss = log_loss(labels, clipped / clipped.sum(axis=1, keepdims=True), labels=list(range(k)))
    report = classification_report(
        labels, predicted, labels=list(range(k)), target_names=list(class_names), output_dict=True, zero_division=0
    )

    def scores(d):
        return {"precision": d["precision"], "recall": d["recall"], "f1": d["f1-score"], "support": int(d["support"])}

    return {
        "n": int(len(labels)),
        "loss": float(loss),
        "accuracy": float(accuracy_score(labels, predicted)),
        "class_names": list(class_names),
        "confusion_matrix": confusion_matrix(labels, predicted, labels=list(range(k))).tolist(),
        "per_class": {name: scores(report[name]) for name in class_names},
        "macro_avg": scores(report["macro avg"]),
        "weighted_avg": scores(report["weighted avg"]),
    }
