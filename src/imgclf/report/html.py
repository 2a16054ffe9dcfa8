"""The one-file HTML report of a run (Jinja2 template, matplotlib pictures embedded as data URIs)."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

from imgclf import _io
from imgclf.errors import ImgclfError
from imgclf.runs import record as runfiles

REPORT_FILE = "report.html"
FEATURE_MAPS_DIR = "feature_maps"


def data_uri(path: str | os.PathLike) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI, so the report needs no other file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def class_balance(counts: dict[str, int]) -> str:
    """One sentence on class balance: the ratio of the largest to the smallest class."""
    if not counts:
        return ""
    big, small = max(counts.values()), min(counts.values())
    ratio = big / max(small, 1)
    if ratio <= 1.5:
        return f"Classes are balanced (largest / smallest = {ratio:.2f})."
    return (
        f"Classes are imbalanced: the largest has {ratio:.1f}x the images of the smallest; accuracy flatters "
        "the model, so read the per-class recall."
    )


def _eval_samples(predictor, record: runfiles.RunConfig, data):
    """Labelled images to evaluate on: ``data`` if given, else the run's own validation images, found again
    with the run's recorded data settings (path, split, seed, label pattern and column)."""
    from imgclf.data.folders import load_eval_samples

    if data is not None:
        return load_eval_samples(data, predictor.classes), str(Path(data).resolve())
    dataset = record.load_dataset()
    if dataset is None:
        return None, None
    return dataset.validation, f"{record.data['path']} (validation)"


def _reliability(calibration: dict | None, folder: Path) -> str | None:
    """The reliability diagram of a calibrated run, drawn into ``folder`` and embedded (or ``None``)."""
    from imgclf.evaluation.unknown import plot_reliability

    if not calibration:
        return None
    return data_uri(plot_reliability(calibration, folder / "reliability.png"))


def _read_suspects(path: Path) -> dict | None:
    """``imgclf suspects --run``'s judgement of the run's data, or ``None`` (absent or unreadable: not shown)."""
    try:
        suspects = _io.read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return suspects if isinstance(suspects, dict) and isinstance(suspects.get("suspects"), list) else None


def render_page(template: str, context: dict) -> str:
    """Render one of the package's page templates (``report.html.j2``, ``compare.html.j2``; they share
    ``style.css.j2``) with autoescaping and a ``basename`` filter."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("imgclf.report", "templates"), autoescape=True,
                             undefined=jinja2.ChainableUndefined)  # fmt: skip
    env.filters["basename"] = lambda p: os.path.basename(str(p))
    return env.get_template(template).render(**context)


def _fast(run: Path) -> dict | None:
    """The run's TensorFlow-free copy, for the report: ``path``, ``bytes``, ``passed`` and its check in words."""
    from imgclf.deploy.fast import fast_record, parity_line, passed

    record = fast_record(run)
    if record is None:
        return None
    return {"path": record.get("path"), "bytes": record.get("bytes"), "passed": passed(record),
            "check": parity_line(record)}  # fmt: skip


def write_report(run_dir: str | os.PathLike, data: str | os.PathLike | None = None, image=None,
                 predictor=None, validation_proba=None, explain: bool = True) -> Path:  # fmt: skip
    """Write ``report.html`` into a run folder and return its path.

    Evaluates the model first when ``data`` is given or no evaluation exists yet (on the run's own
    validation images, found through ``config.yaml``), writing ``metrics.json`` and ``evaluation/``
    pictures (with Grad-CAMs of the worst mistakes); renders feature maps of ``image`` (default the first
    evaluation image) into ``feature_maps/``. Every picture is embedded: the HTML references no file.

    Args:
        predictor: the run's :class:`~imgclf.predict.predictor.Predictor` if it is at hand (saves loading the model).
        validation_proba: the run's validation probabilities if already known (``ImageClassifier.validation_proba_``,
            from the features training cached): its own evaluation reads no image but the mistakes'.
        explain: draw the feature maps and the mistakes' Grad-CAMs (``imgclf train`` leaves them to a later
            ``imgclf report RUN``: the report then says so). An existing evaluation without Grad-CAMs gets them.

    Without ``data``, a run whose validation images cannot be read gets a report without evaluation, and the
    feature maps are drawn on the first evaluation image that can be read.

    Raises:
        ImgclfError: ``run_dir`` is not a run folder, or ``data`` or ``image`` is unusable.
    """

    from imgclf.evaluation.interpretation import (
        EVALUATION_DIR,
        further_evaluation_dir,
        further_evaluations,
        write_evaluation,
        write_gradcam,
    )
    from imgclf.explain.feature_maps import write_feature_maps
    from imgclf.predict.predictor import Predictor
    from imgclf.report.diagnosis import diagnose
    from imgclf.runs.history import read_history_csv
    from imgclf.update.measure import measure_update

    run = runfiles.check_run_dir(run_dir)
    predictor = predictor if predictor is not None else Predictor.from_run(run)
    record = runfiles.RunConfig.read(run)
    root = run if data is None else further_evaluation_dir(run, data)  # other data: beside the run's own record
    metrics_path = root / runfiles.METRICS_FILE
    metrics = _io.read_json(metrics_path) if metrics_path.is_file() else None
    samples = None
    if data is not None or metrics is None or "files" not in metrics:
        samples, described = _eval_samples(predictor, record, data)
        if samples is not None and len(samples):
            try:
                proba = validation_proba if data is None else None
                metrics = write_evaluation(predictor, samples, root, explain=explain, data=described, proba=proba)
            except ImgclfError:
                if data is not None:
                    raise
    elif explain and metrics.get("mistakes") and not (root / EVALUATION_DIR / "mistakes_gradcam.png").is_file():
        write_gradcam(predictor, metrics["mistakes"], root)  # an evaluation train wrote without them
    if samples is None and image is None and explain:  # the run's evaluation exists: its images, for feature maps
        samples = _eval_samples(predictor, record, None)[0]
    candidates = [image] if image is not None else list(samples.paths if samples is not None else [])[:20]
    if image is None and not candidates:
        candidates = [m["path"] for m in (metrics or {}).get("mistakes", [])][:1]
    feature_pngs = []
    for candidate in candidates if explain else []:
        try:
            picture = predictor.load_images([candidate])[0]
        except ImgclfError:
            if image is not None:
                raise
            continue
        feature_pngs = write_feature_maps(predictor.model, picture, run / FEATURE_MAPS_DIR)
        break

    history_path = run / runfiles.HISTORY_FILE
    history = read_history_csv(history_path) if history_path.is_file() else None
    config = _io.read_yaml(run / runfiles.CONFIG_FILE)
    evaluation = root / EVALUATION_DIR
    further = further_evaluations(run)
    ood_eval = metrics if metrics and metrics.get("ood") else next((m for m in further[::-1] if m.get("ood")), None)
    known = None
    if record.parent and samples is not None and validation_proba is not None and len(validation_proba) == len(samples):
        known = {os.path.realpath(p): row for p, row in zip(samples.paths, validation_proba)}
    updated = measure_update(run, predictor, known) if record.parent else None
    suspects_dir = run / runfiles.SUSPECTS_DIR
    suspects = _read_suspects(suspects_dir / runfiles.SUSPECTS_JSON)
    context = {
        "name": run.resolve().name,
        "written": time.strftime("%Y-%m-%d %H:%M"),
        "config": config,
        "resolved": record.resolved,
        "classes": predictor.classes,
        "data": config.get("data"),
        "health": class_balance((config.get("data") or {}).get("train_counts") or {}),
        "curves": [data_uri(p) for p in sorted((run / runfiles.PLOTS_DIR).glob("*.png"))],
        "diagnosis": diagnose(history).to_dict() if history else None,
        "state": runfiles.read_state(run) or {},
        "metrics": metrics,
        "further": further,
        "ood_eval": ood_eval,
        "evaluation_images": [
            data_uri(evaluation / f) for f in ("confusion_matrix.png", "roc_pr.png") if (evaluation / f).is_file()
        ],
        "mistakes_images": [
            data_uri(evaluation / f) for f in ("mistakes.png", "mistakes_gradcam.png") if (evaluation / f).is_file()
        ],
        "suspects": suspects,
        "update": updated,
        "suspects_image": data_uri(suspects_dir / runfiles.SUSPECTS_PNG)
        if suspects and (suspects_dir / runfiles.SUSPECTS_PNG).is_file()
        else None,
        "calibration": predictor.calibration,
        "reliability_image": _reliability(predictor.calibration, evaluation),
        "feature_maps": [data_uri(p) for p in feature_pngs if p.name in ("overview.png", "filters.png")],
        "feature_image": Path(image).name if image is not None else None,
        "explained": explain,
        "fast": _fast(run),
        "augmentation": record.resolved.get("augment") or {},
        "config_yaml": (run / runfiles.CONFIG_FILE).read_text(encoding="utf-8"),
        "summary": (run / runfiles.SUMMARY_FILE).read_text(encoding="utf-8")
        if (run / runfiles.SUMMARY_FILE).is_file()
        else "",
    }
    html = render_page("report.html.j2", context)
    out = run / REPORT_FILE
    _io.write_text(out, html)
    return out
