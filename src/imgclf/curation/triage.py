"""An inbox for unlabelled pictures: which to label first, and filing the ones a person confirmed.

:func:`triage` scores every image of a folder with a trained run and orders them for a person:

1. first the images the run's out-of-distribution detector calls *unknown* (most unlike the training images first):
   they may be a class the model lacks, or junk — worth a look, not worth a label until a class exists for them;
2. then the images the model is least sure of, by *margin* (the top probability minus the second; margin sampling,
   Scheffer et al. 2001), picked so that near-copies are not all on top: among the most uncertain, each next image is
   the one farthest (cosine distance of the penultimate features) from those already picked, times its uncertainty
   (k-center greedy, the core-set selection of Sener & Savarese 2018, weighted as in ranked batch-mode sampling,
   Cardoso et al. 2017);
3. then the rest, least sure first.

``priority`` falls from 1 (look first) to ``1/n`` in that order. ``budget`` picks what to label this round: the first
``budget`` images of part 2 (never an unknown one). :func:`accept` files the images a person confirmed into DATA's
class folders, as a batch that ``imgclf relabel DATA --undo`` (or :func:`imgclf.curation.relabel.undo`) reverts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.curation.relabel import file_into
from imgclf.data.inputs import expand_image_paths
from imgclf.errors import ImgclfError, check_positive_int

#: How many of the least sure images (times the budget, at least :data:`MIN_POOL`) the diverse pick chooses among:
#: 2 and 20 put triage ahead of random picks at every round in ``bench/active_learning.py`` (4 and 50, 8, 16 did not).
POOL_FACTOR = 2
MIN_POOL = 20


@dataclass(frozen=True)
class Triaged:
    """One unlabelled image, scored.

    Attributes:
        path: the image file.
        label: the predicted class.
        probability: its probability, in [0, 1].
        margin: the top probability minus the second, in [0, 1]; small = unsure.
        ood_score: how unlike the training images it is (higher = more unlike), or ``None`` without a detector.
        unknown: the detector calls it unknown (``False`` without a detector).
        priority: in (0, 1]: 1 is the first to look at.
        selected: among the ``budget`` images to label this round.
    """

    path: str
    label: str
    probability: float
    margin: float
    ood_score: float | None
    unknown: bool
    priority: float
    selected: bool = False

    def to_dict(self, folder: str | None = None) -> dict:
        """The JSON line of ``triage --json`` (with ``folder``, the triaged folder, when given)."""
        return {**({"folder": folder} if folder is not None else {}), "path": self.path, "label": self.label,
                "probability": round(self.probability, 4),
                "margin": round(self.margin, 4), "unknown": self.unknown, "priority": round(self.priority, 4),
                "ood_score": None if self.ood_score is None else round(self.ood_score, 4),
                "selected": self.selected}  # fmt: skip


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Top probability minus the second, float64 ``(n,)``, of ``(n, k)`` probabilities (``k >= 2``)."""
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def diverse_order(features: np.ndarray | None, uncertainty: np.ndarray) -> np.ndarray:
    """Indices of ``uncertainty`` ``(n,)`` in picking order: first the most uncertain, then each time the one with
    the largest (cosine distance to the nearest picked) x (its uncertainty) — k-center greedy weighted by
    uncertainty. Without ``features`` ``(n, d)``: by uncertainty alone."""
    n = len(uncertainty)
    if features is None or n == 0:
        return np.argsort(-uncertainty, kind="stable")
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    order = [int(np.argmax(uncertainty))]
    nearest = 1.0 - x @ x[order[0]]
    picked = np.zeros(n, bool)
    picked[order[0]] = True
    for _ in range(n - 1):
        score = np.where(picked, -np.inf, np.maximum(nearest, 0.0) * (uncertainty + 1e-6))
        nxt = int(np.argmax(score))
        order.append(nxt)
        picked[nxt] = True
        nearest = np.minimum(nearest, 1.0 - x @ x[nxt])
    return np.asarray(order)


def triage_order(probabilities: np.ndarray, features: np.ndarray | None, unknown: np.ndarray | None,
                 ood_score: np.ndarray | None, budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``(order, selected)``: the indices of ``probabilities`` ``(n, k)`` in the order to look at them (see the
    module's description) and the ``budget`` chosen for labelling (bool ``(n,)``)."""
    n = len(probabilities)
    unknown = np.zeros(n, bool) if unknown is None else np.asarray(unknown, bool)
    uncertainty = 1.0 - margins(probabilities)
    foreign = np.flatnonzero(unknown)
    if ood_score is not None:
        foreign = foreign[np.argsort(-np.asarray(ood_score)[foreign], kind="stable")]
    known = np.flatnonzero(~unknown)
    by_doubt = known[np.argsort(-uncertainty[known], kind="stable")]
    pool = by_doubt[: max(MIN_POOL, POOL_FACTOR * (budget or 0))]
    picked = pool[diverse_order(None if features is None else features[pool], uncertainty[pool])]
    order = np.concatenate([foreign, picked, by_doubt[len(pool) :]]).astype(int)
    selected = np.zeros(n, bool)
    selected[picked[: budget or 0]] = True
    return order, selected


def triage(run: str | os.PathLike, folder, budget: int | None = None) -> list[Triaged]:
    """Score the images of ``folder`` with the run's model and order them for labelling (see the module).

    Args:
        run: a run folder (or saved classifier).
        folder: a folder of images (searched recursively), or a list of image files.
        budget: how many to choose for labelling this round (``None``: none chosen).

    Returns:
        One :class:`Triaged` per readable image, highest priority first (a :class:`TriageResult`, whose
        ``unreadable`` names the files left out).

    Raises:
        ImgclfError: an unusable run, no images, or ``budget`` not a positive int.
    """
    from imgclf.predict.predictor import Predictor

    budget = None if budget is None else check_positive_int("budget", budget)
    predictor = Predictor.from_run(run)
    with_features = predictor.ood is not None
    got = predictor.predict(folder, features=with_features)
    paths = [str(p) for p in expand_image_paths(folder)]  # the rows' order
    readable = ~np.isnan(got.probabilities).any(axis=1)
    proba = got.probabilities[readable].astype(np.float64)
    feats = got.features[readable] if got.features is not None else None
    unknown = got.unknown[readable] if got.unknown is not None else None
    scores = got.ood_score[readable] if got.ood_score is not None else None
    kept = [p for p, ok in zip(paths, readable) if ok]
    order, selected = triage_order(proba, feats, unknown, scores, budget)
    labels, margin = got.labels()[readable], margins(proba)
    rows = [Triaged(kept[i], str(labels[i]), float(proba[i].max()), float(margin[i]),
                    None if scores is None else float(scores[i]), bool(unknown is not None and unknown[i]),
                    1.0 - rank / len(order), bool(selected[i])) for rank, i in enumerate(order)]  # fmt: skip
    return TriageResult(rows, [p for p, ok in zip(paths, readable) if not ok])


class TriageResult(list):
    """The :class:`Triaged` rows, highest priority first, and ``unreadable``: the files that could not be read
    (left out of the rows)."""

    def __init__(self, rows, unreadable):
        super().__init__(rows)
        self.unreadable = list(unreadable)


def accept(rows, data: str | os.PathLike, min_probability: float | None = None,
           folder: str | os.PathLike | None = None) -> list[dict]:  # fmt: skip
    """File confirmed images into DATA's class folders (the training split of a train/validation layout), as one
    batch recorded in ``DATA/.relabel/manifest.json`` with each file's SHA-256; ``imgclf relabel DATA --undo`` moves
    them back.

    Args:
        rows: dicts with ``path`` and ``label`` (the lines of ``imgclf triage --json``, checked and corrected by a
            person: delete a line to leave its image where it is, change ``label`` to correct it).
        data: the dataset folder.
        min_probability: file only the rows with ``probability`` at least this that are not ``unknown`` (the
            model's own answer, accepted explicitly); ``None`` files every row.
        folder: the triaged folder; every file must lie inside it (through no link out of it). ``None``: the
            ``folder`` the lines record (``triage --json`` writes it), else the folder holding all their files.

    Returns:
        The moves made, ``{"from", "to", "sha256"}``.

    Raises:
        ImgclfError: a row without a path or label, a probability that is not a number, rows of several folders, a
            file outside the triaged folder, not a readable image, not there, inside DATA already, a label that is
            not a class folder of DATA, or a name taken in its class folder — nothing is moved then.
    """
    if min_probability is not None and not 0 <= min_probability <= 1:
        raise ImgclfError(f"min_probability must be in [0, 1]. Received: {min_probability!r}")
    chosen = []
    for k, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("path"), str) or not isinstance(row.get("label"), str):
            raise ImgclfError(f"line {k} of the inbox needs a path and a label. Received: {row!r}")
        if not row["path"] or "\x00" in row["path"]:
            raise ImgclfError(f"line {k} of the inbox: path must be a file's path. Received: {row['path']!r}")
        probability = row.get("probability", 0)
        if isinstance(probability, bool) or not isinstance(probability, (int, float)):
            raise ImgclfError(f"line {k} of the inbox: probability must be a number. Received: {probability!r}")
        if min_probability is not None and (row.get("unknown") or probability < min_probability):
            continue
        chosen.append((Path(row["path"]), row["label"]))
    base = _triaged_folder(rows, chosen, folder)
    for path, _ in chosen:
        real = os.path.realpath(path)
        if not real.startswith(base + os.sep):
            raise ImgclfError(f"{str(path)!r} is not a picture of the triaged folder {base!r}. Nothing was moved.")
    return file_into(data, chosen)


def _triaged_folder(rows, chosen, folder) -> str:
    """The real path of the folder the rows' pictures must come from (see :func:`accept`)."""
    if folder is None:
        values = [row.get("folder") for row in rows if isinstance(row, dict)]
        odd = [value for value in values if value is not None and not isinstance(value, str)]  # a list is unhashable
        odd += [value for value in values if isinstance(value, str) and "\x00" in value]
        if odd:
            raise ImgclfError(f"the inbox lines' folder must be a path. Received: {odd[0]!r}")
        named = set(values)
        if len(named) > 1:
            raise ImgclfError(f"the inbox lines name several folders ({sorted(map(str, named))}): triage one folder "
                              "at a time. Nothing was moved.")  # fmt: skip
        folder = named.pop() if named and None not in named else None
    if folder is None:
        parents = [os.path.dirname(os.path.realpath(p)) for p, _ in chosen]
        return os.path.commonpath(parents) if parents else "/"
    return os.path.realpath(folder)


__all__ = ["Triaged", "TriageResult", "triage", "triage_order", "diverse_order", "margins", "accept"]
