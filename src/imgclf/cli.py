"""The ``imgclf`` command line: a thin Typer + Rich skin over the Python API.

Bad input ends in one line ``Error: ...`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    name="imgclf",
    help="Turn a folder of images into a trained, inspected, deployable image classifier.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@contextmanager
def _quiet_stderr():
    """Hide TensorFlow's C++ start-up notices (printed straight to fd 2 while it loads);
    replay them if the import fails."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _api():
    """Import the library (and TensorFlow) lazily, so ``--help`` is instant."""
    with _quiet_stderr():
        import tensorflow  # noqa: F401

        import imgclf
    return imgclf


def _describe_data(dataset) -> None:
    names = escape(", ".join(dataset.class_names))
    err.print(f"Found {len(dataset.train)} training images belonging to {dataset.num_classes} classes: {names}")
    if dataset.validation is not None:
        how = "held out" if dataset.layout == "single" else "from the validation folder"
        err.print(f"Found {len(dataset.validation)} validation images ({how})")
    else:
        err.print("No validation images: training without validation")


def _print_metrics(metrics: dict) -> None:
    names = metrics["class_names"]
    out.print(f"images {metrics['n']}  loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.4f}")
    out.print("Confusion matrix (rows: true class, columns: predicted class)")
    cm = Table()
    cm.add_column("")
    for name in names:
        cm.add_column(name, justify="right")
    for name, row in zip(names, metrics["confusion_matrix"]):
        cm.add_row(name, *map(str, row))
    out.print(cm)
    per = Table()
    for col in ("class", "precision", "recall", "f1", "support"):
        per.add_column(col, justify="left" if col == "class" else "right")
    rows = [
        *metrics["per_class"].items(),
        ("macro avg", metrics["macro_avg"]),
        ("weighted avg", metrics["weighted_avg"]),
    ]
    for name, s in rows:
        per.add_row(name, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
    out.print(per)


def _finish_run(clf, run: Path) -> None:
    last = clf.history_[-1] if clf.history_ else {}
    shown = "  ".join(f"{k} {last[k]:.4f}" for k in ("accuracy", "val_accuracy") if k in last)
    err.print(f"Run saved to [bold]{escape(str(run))}[/bold]  {shown}")
    err.print("  model.keras, classes.json, config.yaml, history.csv, summary.txt, plots/accuracy.png, plots/loss.png")


@app.command()
def train(
    data: Path = typer.Argument(
        ..., help="Dataset folder: DATA/train/<class>/ + DATA/validation/<class>/, or DATA/<class>/."
    ),
    model: str = typer.Option("course_small", help="Model name (see `imgclf models`)."),
    target_size: tuple[int, int] | None = typer.Option(
        None, help="Height and width in pixels [default: the model's, 150 150]."
    ),
    color_mode: str | None = typer.Option(None, help="rgb or grayscale [default: the model's]."),
    interpolation: str = typer.Option(
        "nearest", help="Resize filter: nearest (Keras load_img's), bilinear, bicubic, lanczos, box, hamming."
    ),
    batch_size: int = typer.Option(20, help="Images per batch."),
    epochs: int = typer.Option(15, help="Passes over the training images."),
    optimizer: str = typer.Option("rmsprop", help="rmsprop, adam or sgd."),
    learning_rate: float = typer.Option(1e-3, help="Optimizer learning rate."),
    class_mode: str = typer.Option("auto", help="auto, binary, categorical or sparse."),
    validation_split: float | None = typer.Option(
        None, help="Fraction held out when DATA has no validation folder [default: 0.2]."
    ),
    seed: int = typer.Option(0, help="Seed for weights, split and shuffling."),
    name: str | None = typer.Option(None, help="Run name [default: <model>-<date>-<time>]."),
    runs_dir: Path = typer.Option(Path("runs"), help="Folder that holds run folders."),
    overwrite: bool = typer.Option(False, help="Replace an existing run folder of the same name."),
):
    """Train a model on a folder of images and write runs/<name>/."""
    imgclf = _api()
    from imgclf.training.run import new_run_dir

    size = tuple(target_size) if target_size and None not in target_size else None
    clf = imgclf.ImageClassifier(
        model,
        target_size=size,
        color_mode=color_mode,
        interpolation=interpolation,
        batch_size=batch_size,
        epochs=epochs,
        optimizer=optimizer,
        learning_rate=learning_rate,
        class_mode=class_mode,
        validation_split=validation_split,
        seed=seed,
    )
    dataset = imgclf.load_folder(data, clf.validation_split, clf.seed)
    _describe_data(dataset)
    run = new_run_dir(runs_dir, name, overwrite, prefix=model)
    clf.fit(dataset, run_dir=run)
    _finish_run(clf, run)


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
):
    """Predict the class of new images."""
    imgclf = _api()
    from imgclf.classifier import expand_image_paths

    clf = imgclf.ImageClassifier.load(run)
    paths = expand_image_paths(images)
    proba = clf.predict_proba(paths)
    for path, p in zip(paths, proba):
        i = int(p.argmax())
        if as_json:
            probs = {c: round(float(v), 6) for c, v in zip(clf.classes_, p)}
            print(
                json.dumps(
                    {
                        "path": path,
                        "label": clf.classes_[i],
                        "probability": round(float(p[i]), 6),
                        "probabilities": probs,
                    }
                )
            )
        else:
            print(f"{path}\t{clf.classes_[i]}\t{p[i]:.4f}")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    data: Path = typer.Argument(..., help="Labelled images: its test/ or validation/ split, or DATA/<class>/."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Evaluate a trained model: loss, accuracy, confusion matrix, per-class metrics; writes metrics.json."""
    imgclf = _api()
    from imgclf._io import write_json
    from imgclf.training.run import METRICS_FILE

    clf = imgclf.ImageClassifier.load(run)
    metrics = clf.evaluate(data)
    metrics["data"] = str(Path(data).resolve())
    write_json(Path(run) / METRICS_FILE, metrics)
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        _print_metrics(metrics)
        err.print(f"Metrics written to {Path(run) / METRICS_FILE}")


@app.command()
def demo(
    epochs: int = typer.Option(10, help="Passes over the training images."),
    name: str | None = typer.Option(None, help="Run name [default: demo-<date>-<time>]."),
    runs_dir: Path = typer.Option(Path("runs"), help="Folder that holds run folders."),
):
    """Train on the built-in handwritten digits (offline), then evaluate: a complete run folder in under a minute."""
    imgclf = _api()
    from imgclf._io import write_json
    from imgclf.data.demo import write_digits
    from imgclf.training.run import METRICS_FILE, new_run_dir

    root = write_digits()
    err.print(f"Digits dataset (scikit-learn, 8x8 PNGs): {root}")
    clf = imgclf.ImageClassifier(
        "course_28", target_size=(28, 28), color_mode="grayscale", batch_size=32, epochs=epochs, validation_split=0.2
    )
    dataset = imgclf.load_folder(root, clf.validation_split, clf.seed)
    _describe_data(dataset)
    run = new_run_dir(runs_dir, name, prefix="demo")
    clf.fit(dataset, run_dir=run)
    metrics = clf.evaluate(dataset.validation)
    metrics["data"] = f"{root} (validation split)"
    write_json(run / METRICS_FILE, metrics)
    _print_metrics(metrics)
    _finish_run(clf, run)


@app.command()
def models():
    """List the registered models."""
    _api()
    from imgclf.models import get_model_spec, list_models

    table = Table("name", "input", "description")
    for name in list_models():
        spec = get_model_spec(name)
        h, w = spec.default_target_size
        table.add_row(name, f"{h}x{w} {spec.default_color_mode}", spec.description)
    out.print(table)


def main() -> None:
    """Console-script entry point: run the app, turning bad input into a one-line error."""
    from imgclf.errors import ImgclfError

    try:
        app()
    except ImgclfError as exc:
        err.print(f"[bold red]Error:[/bold red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
