"""What every command shares: the Typer app, the two consoles, lazy library import, printing helpers."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from imgclf._console import console

app = typer.Typer(
    name="imgclf",
    help="Turn a folder of images into a trained, inspected, deployable image classifier.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
#: Results (tables, predictions) go to stdout; progress and notes to stderr.
out = console(stderr=False)
err = console()


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


def load_api():
    """Import the library (and TensorFlow) lazily, so ``--help`` is instant."""
    with _quiet_stderr():
        import tensorflow  # noqa: F401

        import imgclf
    return imgclf


def describe_data(dataset) -> None:
    """Say what was found, as the course's ``flow_from_directory`` does."""
    names = escape(", ".join(dataset.class_names))
    source = getattr(dataset, "source", None)
    if source is not None:  # a label table: which columns and folder were taken, and what was left out
        split = {"column": f", split by {source.split_col}", "groups": f", {source.group_col} groups kept whole"}
        err.print(escape(f"Label table: file column {source.x_col!r}, label column {source.y_col!r}, images in "
                         f"{source.images}{split.get(source.split, '')}; {source.summary}"
                         f"{' (each in the run: data_problems.csv)' if source.problems else ''}"))  # fmt: skip
    err.print(f"Found {len(dataset.train)} training images belonging to {dataset.num_classes} classes: {names}")
    if dataset.validation is not None:
        how = "held out" if dataset.validation_split is not None else "from the validation folder"
        err.print(f"Found {len(dataset.validation)} validation images ({how})")
    elif dataset.validation_split == 0 and len(dataset.train):
        import numpy as np

        from imgclf.data.folders import MIN_IMAGES_TO_SPLIT

        fewest = int(np.bincount(dataset.train.labels).min())
        why = f" (a class has {fewest} image(s): all kept to learn from)" if fewest < MIN_IMAGES_TO_SPLIT else ""
        err.print(f"No validation images{why}: training without validation")
    else:
        err.print("No validation images: training without validation")


def field(text) -> str:
    """One tab-separated field: a backslash, tab, newline or carriage return in a file or class name is written as
    ``\\\\``, ``\\t``, ``\\n``, ``\\r`` (the escapes of PostgreSQL's text COPY format), so every answer stays one line of
    three or four fields."""
    return str(text).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def print_metrics(metrics: dict) -> None:
    """Loss, accuracy, confusion matrix and per-class table on stdout."""
    names = metrics["class_names"]
    out.print(f"images {metrics['n']}  loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.4f}")
    for bad in metrics.get("skipped", []):
        err.print(f"[yellow]skipped[/yellow] {escape(bad['path'])}: {escape(bad['reason'])}")
    from imgclf.evaluation.interpretation import MAX_PLOTTED_CLASSES, most_confused_classes

    matrix = metrics["confusion_matrix"]
    keep = list(range(len(names)))
    if len(names) > MAX_PLOTTED_CLASSES:
        keep = most_confused_classes(matrix, MAX_PLOTTED_CLASSES)
        out.print(f"Confusion matrix of the {len(keep)} most confused of {len(names)} classes (the whole matrix is "
                  "in metrics.json; rows: true class, columns: predicted class)")  # fmt: skip
    else:
        out.print("Confusion matrix (rows: true class, columns: predicted class)")
    cm = Table()
    cm.add_column("")
    for i in keep:
        cm.add_column(escape(names[i]), justify="right")
    for i in keep:
        cm.add_row(escape(names[i]), *(str(matrix[i][j]) for j in keep))
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
        per.add_row(escape(name), f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"]))
    out.print(per)


def _fast_copy_line(finished) -> str:
    """How the run's TensorFlow-free copy did (:func:`imgclf.deploy.fast.write_fast_copy`), one line."""
    from imgclf.deploy.fast import failed_check, parity_line, passed

    record = finished.fast_copy
    if "error" in record:
        return f"No TensorFlow-free copy ({escape(record['error'])}): predict uses Keras."
    if passed(record):
        return (f"TensorFlow-free copy: {escape(record['path'])} ({record['bytes'] / 1e6:.1f} MB, "
                f"{finished.fast_copy_seconds:.1f} s; {parity_line(record)}): predict and evaluate use it.")  # fmt: skip
    return f"The TensorFlow-free copy {failed_check(record)}: predict uses Keras."


def print_finished(clf, run: Path) -> None:
    """Closing lines of a training run: what finishing it wrote and found (``clf.finished_``,
    :func:`imgclf.report.finish.finish_run`, done by ``fit`` itself), printed."""
    finished = clf.finished_
    if getattr(clf, "stop_reason_", None):
        err.print(f"[bold]Stopped:[/bold] {escape(clf.stop_reason_)}")
    err.print(f"[bold]Diagnosis:[/bold] {escape(finished.diagnosis.message)}")
    for remedy in finished.diagnosis.remedies[:3]:
        err.print(f"  - {escape(remedy)}")
    for note in finished.notes:
        err.print(escape(note))
    err.print(_fast_copy_line(finished))
    if getattr(clf, "track", None):
        if finished.tracking_error:
            err.print(f"[bold]Not tracked:[/bold] {escape(finished.tracking_error)}")
        else:
            err.print(f"Tracked in MLflow: {escape(clf.track)} (experiment imgclf, run {escape(run.resolve().name)})")
    last = clf.history_[-1] if clf.history_ else {}
    shown = "  ".join(f"{k} {last[k]:.4f}" for k in ("accuracy", "val_accuracy") if k in last)
    err.print(f"Run saved to [bold]{escape(str(run))}[/bold]  {shown}")
    if finished.report is None:
        err.print(f"  no report ({escape(finished.report_error or '')}): imgclf report {escape(str(run))} tries again")
    else:
        err.print(f"  report: {escape(str(finished.report))} (feature maps and Grad-CAMs: imgclf report "
                  f"{escape(str(run))})")  # fmt: skip
