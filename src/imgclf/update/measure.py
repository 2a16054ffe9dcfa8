"""What an update cost the old classes: per-class accuracy on the parent run's validation images, before and after
(``imgclf train DATA --from RUN``; forgetting is measured, not hoped away)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imgclf._io import read_json, write_json
from imgclf.errors import ImgclfError
from imgclf.runs import record as runfiles

UPDATE_FILE = runfiles.UPDATE_FILE


def measure_update(run_dir: str | os.PathLike, predictor, known: dict | None = None) -> dict | None:
    """For a run started ``--from`` a parent: the parent's classes' accuracy (recall) on the parent's validation
    images (found again through its record; in a folder that has grown since, those of its classes) before (the
    parent's ``metrics.json``) and after (``predictor``, the updated model), written to ``update.json`` and
    returned; ``None`` for a run without a parent, or when the parent or its validation images are gone.

    Args:
        known: the updated model's probabilities already computed for some images, ``{real path: float32
            (classes,) row}`` (the run's own validation images, from the features training cached): when every
            parent validation image is among them (the same files, found by their real path through any link),
            no image is read again.

    Returns:
        ``{"parent", "images", "new_classes", "classes": {name: {"before", "after"}}, "before", "after"}`` (the
        last two: accuracy over all those images).
    """
    run = Path(run_dir)
    record = runfiles.RunConfig.read(run)
    if not record.parent or not Path(record.parent).is_dir():
        return None
    try:
        parent = runfiles.RunConfig.read(record.parent)
        dataset = parent.load_dataset()
    except (OSError, ValueError, ImgclfError):
        return None
    if dataset is None or dataset.validation is None or not len(dataset.validation):
        return None
    samples = dataset.validation  # the folder may have grown since: keep the parent's classes
    samples = samples.subset(np.flatnonzero(np.isin(np.asarray(dataset.class_names)[samples.labels], parent.classes)))
    if not len(samples):
        return None
    real = [os.path.realpath(p) for p in samples.paths]
    if known and all(r in known for r in real):
        proba = np.stack([known[r] for r in real])
        readable = ~np.isnan(proba).any(axis=1)
        predicted = np.asarray(predictor.classes)[np.nan_to_num(proba, nan=-1).argmax(axis=1)]
    else:
        got = predictor.predict(list(samples.paths))
        readable = ~np.isnan(got.probabilities).any(axis=1)
        predicted = got.labels()
    given = np.asarray(dataset.class_names)[np.asarray(samples.labels)]
    metrics_path = Path(record.parent) / runfiles.METRICS_FILE
    before = read_json(metrics_path) if metrics_path.is_file() else {}
    classes = {}
    for name in parent.classes:
        mine = (given == name) & readable
        classes[name] = {"before": (before.get("per_class") or {}).get(name, {}).get("recall"),
                         "after": float((predicted[mine] == name).mean()) if mine.any() else None}  # fmt: skip
    after = float((predicted[readable] == given[readable]).mean())
    result = {"parent": record.parent, "images": int(readable.sum()),
              "new_classes": [c for c in predictor.classes if c not in parent.classes], "classes": classes,
              "before": before.get("accuracy"), "after": after}  # fmt: skip
    write_json(run / UPDATE_FILE, result)
    return result
