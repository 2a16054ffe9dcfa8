"""Commands that use a trained run: ``predict`` and ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imgclf.cli._common import app, err, load_api, print_metrics


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
):
    """Predict the class of new images: path, label, probability per line."""
    imgclf = load_api()
    from imgclf.classifier import expand_image_paths

    clf = imgclf.ImageClassifier.load(run)
    paths = expand_image_paths(images)
    proba = clf.predict_proba(paths)
    for path, p in zip(paths, proba):
        i = int(p.argmax())
        if as_json:
            probs = {c: round(float(v), 6) for c, v in zip(clf.classes_, p)}
            record = {"path": path, "label": clf.classes_[i], "probability": round(float(p[i]), 6)}
            print(json.dumps({**record, "probabilities": probs}))
        else:
            print(f"{path}\t{clf.classes_[i]}\t{p[i]:.4f}")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    data: Path = typer.Argument(..., help="Labelled images: its test/ or validation/ split, or DATA/<class>/."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Evaluate a trained model: loss, accuracy, confusion matrix, per-class metrics; writes metrics.json."""
    imgclf = load_api()
    from imgclf._io import write_json
    from imgclf.training.run import METRICS_FILE

    clf = imgclf.ImageClassifier.load(run)
    metrics = clf.evaluate(data)
    metrics["data"] = str(Path(data).resolve())
    write_json(Path(run) / METRICS_FILE, metrics)
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        print_metrics(metrics)
        err.print(f"Metrics written to {Path(run) / METRICS_FILE}")
