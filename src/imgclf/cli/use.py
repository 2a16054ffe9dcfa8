"""Commands that use a trained run: ``predict`` and ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from imgclf.cli._common import app, err, load_api, print_metrics


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
    crop: str | None = typer.Option(None, help="x,y,w,h: cut this box (pixels) out of every image first."),
    tta: bool = typer.Option(False, help="Test-time augmentation: average 8 flipped and cropped views."),
):
    """Predict the class of new images: path, label, probability per line."""
    imgclf = load_api()
    from imgclf.classifier import expand_image_paths
    from imgclf.errors import ImgclfError

    box = None
    if crop is not None:
        try:
            box = tuple(int(v) for v in crop.split(","))
        except ValueError:
            raise ImgclfError(f"crop must be x,y,w,h in pixels. Received: {crop!r}") from None
    clf = imgclf.ImageClassifier.load(run)
    csvs = [p for p in images if p.suffix.lower() == ".csv" and p.is_file()]
    paths = expand_image_paths([p for p in images if p not in csvs]) if len(csvs) < len(images) else []
    proba = clf.predict_proba(paths, crop=box, tta=tta) if paths else np.zeros((0, len(clf.classes_)))
    reasons = dict(clf.skipped_.items()) if paths else {}
    for csv_path in csvs:  # pixel CSVs: one image per row, named <file>#row<k>
        rows = clf.predict_proba(csv_path)
        paths += [f"{csv_path}#row{k}" for k in range(1, len(rows) + 1)]
        proba = np.concatenate([proba, rows])
    for path, p in zip(paths, proba):
        if path in reasons:  # unreadable: say why, keep going
            if as_json:
                print(json.dumps({"path": path, "label": None, "error": reasons[path]}))
            else:
                print(f"{path}\t-\tunreadable: {reasons[path]}")
            continue
        i = int(p.argmax())
        if as_json:
            probs = {c: round(float(v), 6) for c, v in zip(clf.classes_, p)}
            record = {"path": path, "label": clf.classes_[i], "probability": round(float(p[i]), 6)}
            print(json.dumps({**record, "probabilities": probs}))
        else:
            print(f"{path}\t{clf.classes_[i]}\t{p[i]:.4f}")
    if reasons:
        err.print(f"Skipped {len(reasons)} unreadable file(s).")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    data: str = typer.Argument(
        ..., help="Labelled images: its test/ or validation/ split, or DATA/<class>/, or a named dataset."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Evaluate a trained model: metrics, confusion matrix, ROC/PR, worst mistakes with Grad-CAM (into RUN)."""
    imgclf = load_api()
    from imgclf._io import write_json
    from imgclf.data.datasets import resolve
    from imgclf.data.folders import load_eval_samples
    from imgclf.evaluation.interpretation import write_evaluation
    from imgclf.training.run import METRICS_FILE

    clf = imgclf.ImageClassifier.load(run)
    data = resolve(data)
    metrics = write_evaluation(clf, load_eval_samples(data, clf.classes_), run)
    metrics["data"] = str(Path(data).resolve())
    write_json(Path(run) / METRICS_FILE, metrics)
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        print_metrics(metrics)
        files = ", ".join(metrics["files"])
        err.print(f"Written to {run}: {METRICS_FILE}, {files}")
