"""Classification metrics of predicted probabilities (scikit-learn), as fastai's interpretation gives them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    classification_report,
    confusion_matrix,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] before logs, as Keras' cross-entropy does.
EPSILON = 1e-7
#: Decision threshold on the probability of ``class_names[1]`` for binary models (argmax of two outputs).
BINARY_THRESHOLD = 0.5


def sample_losses(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Cross-entropy of each sample: ``-log p(true class)``, float64 ``(n,)``.

    Args:
        labels: true class indices, int ``(n,)``.
        proba: probabilities ``(n, classes)``.
    """
    p = np.clip(np.asarray(proba, np.float64)[np.arange(len(labels)), labels], EPSILON, 1 - EPSILON)
    return -np.log(p)


def most_confused(cm: np.ndarray, class_names, min_count: int = 1) -> list[dict]:
    """Off-diagonal cells of a confusion matrix, largest first (fastai's ``most_confused``).

    Returns:
        ``[{"true": name, "predicted": name, "count": n}, ...]`` with ``count >= min_count``.
    """
    cm = np.asarray(cm)
    pairs = [
        {"true": class_names[i], "predicted": class_names[j], "count": int(cm[i, j])}
        for i in range(len(cm))
        for j in range(len(cm))
        if i != j and cm[i, j] >= min_count
    ]
    return sorted(pairs, key=lambda d: (-d["count"], d["true"], d["predicted"]))


def binary_curves(labels: np.ndarray, proba: np.ndarray) -> dict:
    """ROC AUC, average precision and thresholds for a two-class problem (positive = class 1).

    Returns:
        ``roc_auc``, ``average_precision``, ``threshold`` (the one used, :data:`BINARY_THRESHOLD`) and
        ``best_f1_threshold`` / ``best_f1`` (the threshold on p(class 1) that maximises F1 here);
        ``roc_auc`` and ``average_precision`` are ``None`` when only one class is present.
    """
    labels = np.asarray(labels)
    score = np.asarray(proba, np.float64)[:, 1]
    out = {"threshold": BINARY_THRESHOLD, "roc_auc": None, "average_precision": None}
    if len(np.unique(labels)) < 2:
        return out | {"best_f1_threshold": None, "best_f1": None}
    precision, recall, thresholds = precision_recall_curve(labels, score)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return out | {
        "roc_auc": float(roc_auc_score(labels, score)),
        "average_precision": float(average_precision_score(labels, score)),
        "best_f1_threshold": float(thresholds[best]) if len(thresholds) else None,
        "best_f1": float(f1[best]),
    }


def classification_metrics(labels: np.ndarray, proba: np.ndarray, class_names) -> dict:
    """Loss, accuracy, confusion matrix, per-class precision/recall/F1 and the most confused pairs.

    Args:
        labels: true class indices, shape ``(n,)`` int.
        proba: predicted probabilities, shape ``(n, classes)`` float (rows sum to 1).
        class_names: the ``classes`` label names, in label order.

    Returns:
        A JSON-ready dict: ``n``, ``loss`` (mean cross-entropy, probabilities clipped to
        [1e-7, 1 - 1e-7] as Keras does), ``accuracy``, ``class_names``, ``confusion_matrix``
        (rows true class, columns predicted class, as in ``sklearn.metrics.confusion_matrix``),
        ``per_class`` (``{name: {precision, recall, f1, support}}``), ``macro_avg``, ``weighted_avg``,
        ``most_confused`` (see :func:`most_confused`) and, for two classes, ``binary`` (see
        :func:`binary_curves`).
    """
    labels = np.asarray(labels)
    proba = np.asarray(proba, dtype=np.float64)
    k = len(class_names)
    predicted = proba.argmax(axis=1)
    clipped = np.clip(proba, EPSILON, 1 - EPSILON)
    loss = log_loss(labels, clipped / clipped.sum(axis=1, keepdims=True), labels=list(range(k)))
    report = classification_report(
        labels, predicted, labels=list(range(k)), target_names=list(class_names), output_dict=True, zero_division=0
    )
    cm = confusion_matrix(labels, predicted, labels=list(range(k)))

    def scores(d):
        return {"precision": d["precision"], "recall": d["recall"], "f1": d["f1-score"], "support": int(d["support"])}

    metrics = {
        "n": int(len(labels)),
        "loss": float(loss),
        "accuracy": float(accuracy_score(labels, predicted)),
        "class_names": list(class_names),
        "confusion_matrix": cm.tolist(),
        "per_class": {name: scores(report[name]) for name in class_names},
        "macro_avg": scores(report["macro avg"]),
        "weighted_avg": scores(report["weighted avg"]),
        "most_confused": most_confused(cm, list(class_names)),
    }
    if k == 2:
        metrics["binary"] = binary_curves(labels, proba)
    return metrics


def top_losses(labels: np.ndarray, proba: np.ndarray, count: int = 16, mistakes_only: bool = True) -> np.ndarray:
    """Indices of the ``count`` samples with the highest loss (fastai's ``top_losses``), highest first.

    With ``mistakes_only`` only misclassified samples are returned (possibly fewer than ``count``).
    """
    losses = sample_losses(labels, proba)
    order = np.argsort(-losses, kind="stable")
    if mistakes_only:
        wrong = np.asarray(proba).argmax(axis=1) != np.asarray(labels)
        order = order[wrong[order]]
    return order[:count]
