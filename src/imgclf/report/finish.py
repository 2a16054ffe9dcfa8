"""Finishing a run: what every finished training writes beside its model, whoever started it.

``ImageClassifier.fit(run_dir=…)`` (and ``resume``) calls :func:`finish_run` once the model, its record and its
calibration are saved, so the library, ``imgclf train`` and the studio (which runs ``imgclf train``) write the same
run folder: the TensorFlow-free copy (``fast/``, :func:`imgclf.deploy.fast.write_fast_copy`), the report
(``report.html``, ``metrics.json``, ``evaluation/``: :func:`imgclf.report.html.write_report`, without the feature maps
and Grad-CAMs, which ``imgclf report RUN`` adds) and, with ``track``, the MLflow run
(:func:`imgclf.runs.tracking.track_run`, given every file at once). What a person should read — the curves'
diagnosis, why "unknown" rests on few images, how the copy did — comes back as a :class:`FinishedRun`; the command
line prints it, the library keeps it (``ImageClassifier.finished_``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from imgclf.report.diagnosis import Diagnosis, diagnose


@dataclass(frozen=True)
class FinishedRun:
    """What finishing a run wrote and found.

    Attributes:
        run: the run folder.
        diagnosis: the training curves' diagnosis (:func:`imgclf.report.diagnose`).
        fast_copy: the TensorFlow-free copy's ``export.json`` record, or ``{"error": why}`` (predict then uses Keras).
        fast_copy_seconds: wall seconds writing and checking the copy took.
        report: ``report.html``, or ``None`` when it could not be written (``report_error`` says why; ``imgclf
            report RUN`` tries again).
        tracked: the MLflow run id, or ``None`` (no ``track``, or ``tracking_error``).
        notes: lines a person should read (e.g. "unknown" resting on few validation images).
    """

    run: Path
    diagnosis: Diagnosis
    fast_copy: dict
    fast_copy_seconds: float
    report: Path | None
    report_error: str | None = None
    tracked: str | None = None
    tracking_error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def few_for_unknown(ood, n) -> str | None:
    """The note when "unknown" rests on too few validation images to hold its false-alarm rate: its threshold is the
    ``1 - rate`` quantile of their scores (:meth:`imgclf.unknown.detector.OodDetector.set_thresholds`), so with ``n``
    images below ``1 / rate`` it is their highest score, and about 1 in ``n + 1`` ordinary pictures scores above."""
    if ood is None or not n or n * ood.false_alarm_rate >= 1:
        return None
    return (f'"unknown" rests on {n} validation image(s): expect about 1 in {n + 1} ordinary pictures to be '
            f"answered unknown (aimed at {ood.false_alarm_rate:.0%}); hold out more images for a sharper "
            "threshold.")  # fmt: skip


def finish_run(clf, run: str | os.PathLike) -> FinishedRun:
    """Write the fast copy, the report and the tracking of the fitted ``clf``'s saved run folder ``run``.

    Raises:
        OSError: a full disk or a read-only folder (a run is not finished without its files; ``imgclf train``
            then puts a replaced run back).
        ImgclfError: ``run`` is not a run folder.
    """
    from imgclf.deploy.fast import write_fast_copy
    from imgclf.report.html import write_report

    run = Path(run)
    start = time.perf_counter()
    fast = write_fast_copy(run)
    fast_seconds = time.perf_counter() - start
    report, report_error = None, None
    try:  # the model is in memory (no reload), the validation probabilities often too (no second pass)
        report = write_report(run, predictor=clf.predictor(), validation_proba=getattr(clf, "validation_proba_", None),
                              explain=False)  # fmt: skip
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - a report that fails leaves a usable run: say why, keep the run
        report_error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    tracked, tracking_error = None, None
    if getattr(clf, "track", None) is not None:
        from imgclf.runs.tracking import TrackingFailed, track_run

        try:
            tracked = track_run(run, clf.track, clf.model_)
        except TrackingFailed as exc:  # bounded; the run stays whole and usable, only untracked
            tracking_error = f"{exc}. The run is saved in {str(run)!r}, not tracked."
    calibration = getattr(clf, "calibration_", None) or {}
    note = few_for_unknown(getattr(clf, "ood_", None), calibration.get("validation_images"))
    return FinishedRun(run, diagnose(clf.history_), fast, fast_seconds, report, report_error, tracked, tracking_error,
                       (note,) if note else ())  # fmt: skip


__all__ = ["FinishedRun", "finish_run", "few_for_unknown"]
