"""Predictions as records, one per image, for files, folders, pixel CSVs and packed data given together: what
``imgclf predict`` prints and the web app answers (a convenience over :meth:`Predictor.predict`)."""

from __future__ import annotations

import os

import numpy as np

from imgclf.data.inputs import expand_image_paths, input_kind
from imgclf.data.packed import is_packed
from imgclf.predict.answer import picture_answer
from imgclf.predict.predictor import Predictor, packed_names


def predict_items(predictor: Predictor, items, *, crop=None, tta: bool = False) -> list[dict]:
    """Predict image files, folders and pixel CSVs given together, one record per image.

    Pixel-CSV rows are named ``<file.csv>#row<k>`` (k from 1); packed images (``imgclf pack``, training then
    validation split) ``<folder>#<path the image was packed from>``.

    Returns:
        Dicts ``{"path", **picture_answer(...)}`` (:func:`imgclf.predict.answer.picture_answer`: label,
        probability, probabilities, and ``ood_score`` / ``unknown`` when the run has an OOD detector) — or
        ``{"path", "label": None, "error": reason}`` for a file that cannot be decoded.

    Raises:
        ImgclfError: as :meth:`Predictor.predict`.
    """
    items = [items] if isinstance(items, (str, os.PathLike)) else list(items)
    csvs = [p for p in items if input_kind(p) in ("csv", "packed")]
    files = [p for p in items if p not in csvs]
    paths = expand_image_paths(files) if files else []
    first = predictor.predict(paths, crop=crop, tta=tta)  # (0, classes) when there are none
    reasons = dict(first.skipped.items())
    names, rows, score_rows = list(paths), [first.probabilities], [first.ood_score]
    for csv_path in csvs:
        more = predictor.predict(csv_path)
        p, sc = more.probabilities, more.ood_score
        if is_packed(csv_path):
            names += [f"{csv_path}#{name}" for name in packed_names(csv_path)]
        else:
            names += [f"{csv_path}#row{k}" for k in range(1, len(p) + 1)]
        rows.append(p)
        score_rows.append(sc)
    proba = np.concatenate([r.reshape(-1, len(predictor.classes)) for r in rows]) if names else np.zeros((0,))
    scores = np.concatenate(score_rows) if names and predictor.ood is not None else None
    records = []
    for k, (name, p) in enumerate(zip(names, proba)):
        if name in reasons:
            records.append({"path": name, "label": None, "error": reasons[name]})
            continue
        score = float(scores[k]) if scores is not None else None
        record = {"path": name, **picture_answer(predictor.classes, p, predictor.ood, score)}
        records.append(record)
    return records


__all__ = ["predict_items"]
