"""The answer for one predicted picture, built once for every place that gives one: ``imgclf predict``'s records
(:func:`imgclf.predict.items.predict_items`), ``imgclf serve``'s ``POST /predict`` and the studio's try page."""

from __future__ import annotations

import numpy as np


def picture_answer(classes, probabilities, ood=None, ood_score: float | None = None, digits: int | None = None) -> dict:
    """``{"label", "probability", "probabilities": {class: p}}`` for one picture, plus ``"ood_score"`` and
    ``"unknown"`` (the score above the run's threshold) when the run has an out-of-distribution detector.

    Args:
        classes: the class names, in the model's output order.
        probabilities: float ``(len(classes),)``, one picture's row of :attr:`Prediction.probabilities`.
        ood: the run's :class:`~imgclf.unknown.detector.OodDetector` (or ``None``): ``unknown`` is its decision.
        ood_score: the picture's score by ``ood`` (ignored without ``ood``).
        digits: round every figure to this many decimals (a web answer); ``None`` keeps them as computed.

    Raises:
        ValueError: ``probabilities`` does not hold one value a class.
    """
    row = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if row.shape != (len(classes),):
        raise ValueError(f"probabilities must hold one value for each of {len(classes)} classes. Received: "
                         f"shape {row.shape}")  # fmt: skip

    def figure(v) -> float:
        return round(float(v), digits) if digits is not None else float(v)

    best = int(row.argmax())
    answer = {"label": str(classes[best]), "probability": figure(row[best]),
              "probabilities": {str(c): figure(p) for c, p in zip(classes, row)}}  # fmt: skip
    if ood is not None and ood_score is not None:
        answer["ood_score"] = figure(ood_score)
        answer["unknown"] = bool(ood.unknown(np.asarray([ood_score]))[0])
    return answer


__all__ = ["picture_answer"]
