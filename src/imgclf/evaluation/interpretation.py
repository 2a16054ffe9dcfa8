"""Interpretation of a trained classifier on labelled images: metrics, pictures and the worst mistakes.

Modelled on fastai's ``ClassificationInterpretation`` (confusion matrix, ``most_confused``,
``plot_top_losses``); the metrics and curves come from scikit-learn.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf._io import read_json as _read_json
from imgclf._io import write_json, write_text
from imgclf.data.folders import Samples
from imgclf.errors import ImgclfError
from imgclf.evaluation.metrics import classification_metrics, sample_losses, top_losses
from imgclf.plotting import heatmap_overlay, new_figure, save_figure, save_grid
from imgclf.predict.predictor import Predictor

#: Sub-folder of a run that ``evaluate`` writes its pictures into.
EVALUATION_DIR = "evaluation"
#: Sub-folder of a run that holds its evaluations on other data (``imgclf evaluate RUN DATA``), one folder each:
#: the run's own record (``metrics.json``, ``evaluation/``: on its validation images) is never replaced.
FURTHER_EVALUATIONS_DIR = "evaluations"


def further_evaluation_dir(run_dir: str | os.PathLike, data: str | os.PathLike) -> Path:
    """Where an evaluation of ``run_dir``'s model on ``data`` goes: ``RUN/evaluations/<data's folder name>``, the
    folder that already holds this data's evaluation (it is replaced), or a new one (``-2``, ``-3``, …) when that
    name holds another data's."""
    from imgclf.runs.record import METRICS_FILE

    source = str(Path(data).resolve())
    base = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(source).name).lstrip(".") or "data"
    folder, i = Path(run_dir) / FURTHER_EVALUATIONS_DIR / base, 2
    while folder.exists():
        try:
            recorded = _read_json(folder / METRICS_FILE).get("data")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if recorded == source:
            break
        folder, i = Path(run_dir) / FURTHER_EVALUATIONS_DIR / f"{base}-{i}", i + 1
    return folder


def further_evaluations(run_dir: str | os.PathLike) -> list[dict]:
    """The ``metrics.json`` of each evaluation on other data (:func:`further_evaluation_dir`), oldest first, each
    with ``folder`` (relative to the run) added; unreadable ones are left out."""
    from imgclf.runs.record import METRICS_FILE

    found = []
    for path in (Path(run_dir) / FURTHER_EVALUATIONS_DIR).glob(f"*/{METRICS_FILE}"):
        try:
            metrics = _read_json(path)
            found.append((path.stat().st_mtime, {**metrics, "folder": str(path.parent.relative_to(run_dir))}))
        except (OSError, ValueError, TypeError):
            continue
    return [m for _, m in sorted(found, key=lambda pair: pair[0])]


#: Most classes drawn in the confusion-matrix picture (and printed by ``imgclf evaluate``); past it, the most
#: confused ones. 1,000 classes drawn whole took ~19 GB of memory (a million annotated cells).
MAX_PLOTTED_CLASSES = 30


def most_confused_classes(cm: np.ndarray, limit: int) -> list[int]:
    """Indices (sorted) of the ``limit`` classes with the most mistakes, made or received, in a confusion matrix
    int ``(k, k)`` (rows true, columns predicted); ties go to the lower index."""
    cm = np.asarray(cm)
    off = cm - np.diag(np.diag(cm))
    involvement = off.sum(axis=0) + off.sum(axis=1)
    return sorted(np.argsort(-involvement, kind="stable")[:limit].tolist())


@dataclass
class Interpretation:
    """Predictions of a classifier on labelled images, and what can be said of them.

    Attributes:
        class_names: label names in output order.
        paths: the ``n`` image files.
        labels: true class indices, int ``(n,)``.
        proba: predicted probabilities, float32 ``(n, classes)``.
    """

    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray
    proba: np.ndarray
    skipped: tuple[dict, ...] = ()
    images: np.ndarray | None = None

    @classmethod
    def from_predictor(cls, predictor: Predictor, samples: Samples) -> Interpretation:
        """Predict ``samples`` with a trained model (one pass).

        Files that cannot be decoded are left out and listed in ``skipped`` (``path``, ``reason``).

        Raises:
            ImgclfError: there are images but none of them can be decoded, or the model predicts NaN (diverged).
        """
        classes = tuple(predictor.classes)
        if samples.records is not None:  # packed: decoded already, bad files were left out when packing
            from imgclf.pipeline.records import in_memory  # TensorFlow reads the shards: only for them

            samples = in_memory(samples)
        if samples.images is not None:  # pixel rows: nothing to decode, nothing to skip
            images = predictor.image.to_model_input(samples.images)
            proba = predictor.predict_proba(images)
            return cls(classes, tuple(samples.paths), np.asarray(samples.labels), proba, (), images)
        result = predictor.predict(list(samples.paths))
        proba, skipped = result.probabilities, result.skipped
        ok = ~np.isnan(proba).any(axis=1)  # an unreadable file's row is NaN
        if (~ok).sum() > len(skipped):  # NaN for images that were read: the weights are not finite
            raise ImgclfError(
                f"the model predicts NaN for {int((~ok).sum()) - len(skipped)} readable images: its weights "
                "are not finite (training diverged; try a lower learning_rate)."
            )
        if len(samples.paths) and not ok.any():
            path, reason = skipped.items()[0]
            raise ImgclfError(
                f"none of the {len(samples.paths)} evaluation images can be read (e.g. {path!r}: {reason}); "
                "`imgclf doctor DATA` lists and quarantines bad files."
            )
        paths = tuple(p for p, keep in zip(samples.paths, ok) if keep)
        return cls(classes, paths, np.asarray(samples.labels)[ok], proba[ok], tuple(skipped.to_list()))

    @property
    def metrics(self) -> dict:
        """See :func:`imgclf.evaluation.metrics.classification_metrics`; plus ``skipped`` files."""
        if not hasattr(self, "_metrics"):
            self._metrics = classification_metrics(self.labels, self.proba, self.class_names)
            self._metrics["skipped"] = list(self.skipped)
        return self._metrics

    def top_losses(self, count: int = 16) -> list[dict]:
        """The worst mistakes, highest loss first: ``path``, ``true``, ``predicted``, ``probability``
        (of the predicted class), ``true_probability`` and ``loss``."""
        losses = sample_losses(self.labels, self.proba)
        rows = []
        for i in top_losses(self.labels, self.proba, count):
            pred = int(self.proba[i].argmax())
            rows.append(
                {
                    "path": self.paths[i],
                    "true": self.class_names[self.labels[i]],
                    "predicted": self.class_names[pred],
                    "probability": float(self.proba[i, pred]),
                    "true_probability": float(self.proba[i, self.labels[i]]),
                    "loss": float(losses[i]),
                }
            )
        return rows

    def load_images(self, predictor: Predictor, paths: list[str]) -> np.ndarray:
        """Model-input images of some of the samples (decoded from files, or taken from the pixels)."""
        if self.images is None:
            return predictor.load_images(paths)
        where = {p: i for i, p in enumerate(self.paths)}
        return self.images[[where[p] for p in paths]]

    def plot_confusion_matrix(self, path: str | os.PathLike) -> Path:
        """Confusion matrix picture (scikit-learn's ``ConfusionMatrixDisplay``). With more than
        :data:`MAX_PLOTTED_CLASSES` classes, the sub-matrix of the classes most involved in mistakes
        (:func:`most_confused_classes`): the figure and its annotations stay bounded whatever the class count."""
        from sklearn.metrics import ConfusionMatrixDisplay

        cm, names = np.asarray(self.metrics["confusion_matrix"]), list(self.class_names)
        title = f"Confusion matrix (accuracy {self.metrics['accuracy']:.3f})"
        if len(names) > MAX_PLOTTED_CLASSES:
            keep = most_confused_classes(cm, MAX_PLOTTED_CLASSES)
            cm, names = cm[np.ix_(keep, keep)], [names[i] for i in keep]
            title = (
                f"The {len(keep)} most confused of {len(self.class_names)} classes " + title[len("Confusion matrix ") :]
            )
        k = len(names)
        fig, ax = new_figure(figsize=(max(4, 0.6 * k + 3), max(3.5, 0.6 * k + 2.5)))
        ConfusionMatrixDisplay(cm, display_labels=names).plot(
            ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45 if k > 4 else "horizontal"
        )
        ax.set_title(title)
        fig.tight_layout()
        return save_figure(fig, path)

    def plot_roc_pr(self, path: str | os.PathLike) -> Path | None:
        """ROC and precision-recall curves for two classes (positive = ``class_names[1]``); else ``None``."""
        from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

        if len(self.class_names) != 2 or len(np.unique(self.labels)) < 2:
            return None
        score = self.proba[:, 1]
        fig, (a, b) = new_figure(1, 2, figsize=(9, 4))
        RocCurveDisplay.from_predictions(self.labels, score, ax=a, name=self.class_names[1])
        PrecisionRecallDisplay.from_predictions(self.labels, score, ax=b, name=self.class_names[1])
        a.set_title("ROC curve")
        b.set_title(f"Precision-recall (threshold {self.metrics['binary']['threshold']})")
        fig.tight_layout()
        return save_figure(fig, path)

    def plot_top_losses(self, path: str | os.PathLike, images: np.ndarray, rows: list[dict]) -> Path:
        """Gallery of the worst mistakes; ``images`` uint8 ``(k, h, w, c)`` in the order of ``rows``."""
        return mistakes_grid(images, path, rows)

    def confusion_text(self) -> str:
        """The confusion matrix as a plain-text table (rows true, columns predicted)."""
        names = self.class_names
        cm = self.metrics["confusion_matrix"]
        width = max(6, *(len(n) for n in names))
        lines = ["true \\ predicted".ljust(width + 2) + " ".join(n.rjust(width) for n in names)]
        lines += [n.ljust(width + 2) + " ".join(str(v).rjust(width) for v in row) for n, row in zip(names, cm)]
        return "\n".join(lines) + "\n"


def write_evaluation(
    predictor: Predictor,
    samples: Samples,
    run_dir: str | os.PathLike,
    count: int = 16,
    explain: bool = True,
    data: str | None = None,
    proba: np.ndarray | None = None,
) -> dict:
    """Evaluate a trained model on ``samples`` and write everything into ``run_dir`` (a run folder, for its own
    record, or a :func:`further_evaluation_dir`).

    Writes ``metrics.json`` (metrics + ``mistakes``), and in ``evaluation/``: ``confusion_matrix.png``,
    ``confusion_matrix.txt``, ``roc_pr.png`` (two classes), ``mistakes.png`` and, with ``explain``,
    ``mistakes_gradcam.png`` (:func:`write_gradcam`).

    Args:
        data: where the samples came from, recorded as ``data`` in ``metrics.json``.
        proba: the samples' probabilities float32 ``(n, len(classes))`` if already known (e.g. from the features
            training cached: ``ImageClassifier.validation_proba_``); else the model predicts them (one pass).

    Returns:
        The metrics dict, with ``mistakes`` (see :meth:`Interpretation.top_losses`), ``files`` and ``data``.
    """
    from imgclf.runs.record import METRICS_FILE

    run_dir = Path(run_dir)
    out = run_dir / EVALUATION_DIR
    out.mkdir(parents=True, exist_ok=True)
    if proba is not None and len(proba) == len(samples.labels) and samples.images is None and samples.records is None:
        interp = Interpretation(tuple(predictor.classes), tuple(samples.paths), np.asarray(samples.labels), proba)
    else:
        interp = Interpretation.from_predictor(predictor, samples)
    metrics = dict(interp.metrics)
    rows = interp.top_losses(count)
    metrics["mistakes"] = rows
    files = [interp.plot_confusion_matrix(out / "confusion_matrix.png")]
    write_text(out / "confusion_matrix.txt", interp.confusion_text())
    files.append(out / "confusion_matrix.txt")
    files.append(write_predictions(interp, out / PREDICTIONS_FILE))
    roc = interp.plot_roc_pr(out / "roc_pr.png")
    files += [roc] if roc else []
    if rows:
        images = interp.load_images(predictor, [r["path"] for r in rows])
        files.append(interp.plot_top_losses(out / "mistakes.png", images, rows))
        gradcam_png = write_gradcam(predictor, rows, run_dir, images) if explain else None
        files += [gradcam_png] if gradcam_png else []
    metrics["files"] = [str(f.relative_to(run_dir)) for f in files]
    metrics["data"] = data
    write_json(run_dir / METRICS_FILE, metrics)
    return metrics


#: Every evaluated image's prediction (``imgclf compare`` finds where two runs disagree from it).
PREDICTIONS_FILE = "predictions.csv"


def write_predictions(interp: Interpretation, path: str | os.PathLike) -> Path:
    """Write ``predictions.csv``: ``path``, ``true``, ``predicted``, ``probability`` (of the predicted class) per
    image, in the evaluation's order (atomically)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "true", "predicted", "probability"])
    predicted = interp.proba.argmax(axis=1)
    for path_, true, pred, row in zip(interp.paths, interp.labels, predicted, interp.proba):
        writer.writerow([path_, interp.class_names[true], interp.class_names[pred], f"{row[pred]:.6f}"])
    write_text(path, buffer.getvalue())
    return Path(path)


def read_predictions(path: str | os.PathLike) -> dict[str, dict] | None:
    """``predictions.csv`` by image path (``true``, ``predicted``, ``probability``), or ``None`` when absent or
    unreadable."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {r["path"]: {"true": r["true"], "predicted": r["predicted"], "probability": float(r["probability"])}
                    for r in csv.DictReader(f)}  # fmt: skip
    except (OSError, ValueError, KeyError, csv.Error):
        return None


def write_gradcam(predictor: Predictor, rows: list[dict], run_dir: str | os.PathLike,
                  images: np.ndarray | None = None) -> Path | None:  # fmt: skip
    """Draw ``evaluation/mistakes_gradcam.png``: the worst mistakes ``rows`` (``metrics.json``'s ``mistakes``) with
    Grad-CAM heat-maps of the predicted class (Selvaraju et al. 2017, :func:`imgclf.explain.gradcam`).

    Args:
        images: the rows' model-input images uint8 ``(k, h, w, c)``, or ``None`` to read them from their files.

    Returns:
        The picture's path, or ``None`` when there is nothing to draw: no mistakes, a model that is not a Keras
        graph (an export), or a file that can no longer be read.
    """
    keras = sys.modules.get("keras")  # a Keras model exists only once Keras is imported: an export never imports it
    if not rows or keras is None or not isinstance(predictor.model, keras.Model):  # Grad-CAM needs the Keras graph
        return None
    from imgclf.explain import gradcam

    if images is None:
        try:
            images = predictor.load_images([r["path"] for r in rows])
        except ImgclfError:
            return None
    maps, _ = gradcam(predictor.model, images)
    overlays = np.stack([heatmap_overlay(img, m) for img, m in zip(images, maps)])
    return mistakes_grid(overlays, Path(run_dir) / EVALUATION_DIR / "mistakes_gradcam.png", rows)


def mistakes_grid(images: np.ndarray, path: str | os.PathLike, rows: list[dict]) -> Path:
    """A gallery of mistakes: ``images`` uint8 ``(k, h, w, c)`` titled with ``rows``' true → predicted, p, loss."""
    titles = [f"{r['true']} → {r['predicted']}\np={r['probability']:.2f} loss={r['loss']:.2f}" for r in rows]
    return save_grid(images, path, titles=titles, cols=min(4, max(1, len(rows))), title="Worst mistakes")
