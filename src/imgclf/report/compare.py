"""``imgclf compare``: two or more runs side by side, as one HTML page (like the report, every picture embedded).

What differs in their settings (``config.yaml``), their curves overlaid (one PNG), per-class precision and recall
from each run's evaluation (``metrics.json``), and the validation images on which their predictions differ
(``evaluation/predictions.csv``; a run evaluated before that file existed is evaluated again, once).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.errors import ImgclfError
from imgclf.evaluation.interpretation import EVALUATION_DIR, PREDICTIONS_FILE, read_predictions
from imgclf.plotting import new_figure, save_figure, save_grid
from imgclf.runs import record as runfiles
from imgclf.runs.history import read_history_csv

COMPARE_FILE = "compare.html"
#: Images shown where the runs disagree (the rest are counted).
MAX_DISAGREEMENTS = 24
#: Settings that say where or when, not how: left out of "what differs".
NOT_SETTINGS = ("versions", "imgclf_version", "created")


def flatten(mapping: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists and scalars stay values)."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def differing_settings(configs: list[dict]) -> list[dict]:
    """``[{"setting": name, "values": [one per run]}]`` for every setting (resolved values and data included) whose
    value is not the same in every run, in a stable order."""
    flats = [flatten({k: v for k, v in c.items() if k not in NOT_SETTINGS}) for c in configs]
    names = sorted(set().union(*flats))
    rows = []
    for name in names:
        values = [f.get(name) for f in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append({"setting": name, "values": values})
    return rows


def plot_curves(histories: list[list[dict]], names: list[str], path: Path) -> Path:
    """Validation accuracy and loss of every run on one picture (training dashed)."""
    fig, (acc, loss) = new_figure(1, 2, figsize=(11, 4), dpi=100)
    for i, (rows, name) in enumerate(zip(histories, names)):
        colour = f"C{i % 10}"
        for ax, metric in ((acc, "accuracy"), (loss, "loss")):
            for key, style, label in ((f"val_{metric}", "-", name), (metric, "--", None)):
                points = [(r["epoch"], r[key]) for r in rows if key in r]
                if points:  # markers too: a one-epoch run (prototypes) is a single point
                    ax.plot(*zip(*points), style, color=colour, label=label, linewidth=1.5 if label else 1,
                            marker="o" if label else None, markersize=3)  # fmt: skip
    for ax, metric in ((acc, "accuracy"), (loss, "loss")):
        ax.set_title(f"Validation {metric} (training dashed)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    acc.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _predictions(run: Path) -> dict[str, dict] | None:
    """A run's per-image predictions on its own validation images, evaluating it once if it has none recorded."""
    found = read_predictions(run / EVALUATION_DIR / PREDICTIONS_FILE)
    if found is not None:
        return found
    from imgclf.evaluation.interpretation import write_evaluation
    from imgclf.predict.predictor import Predictor

    record = runfiles.RunConfig.read(run)
    dataset = record.load_dataset()
    if dataset is None or dataset.validation is None:
        return None
    write_evaluation(Predictor.from_run(run), dataset.validation, run, explain=False,
                     data=f"{record.data['path']} (validation)")  # fmt: skip
    return read_predictions(run / EVALUATION_DIR / PREDICTIONS_FILE)


def disagreements(predictions: list[dict[str, dict] | None]) -> tuple[list[dict], int]:
    """``(rows, images compared)``: the images every run predicted whose predicted class is not the same in all,
    each ``{"path", "true", "predicted": [one per run], "probability": [...]}``, the most confident disagreements
    first."""
    if any(p is None for p in predictions):
        return [], 0
    common = sorted(set.intersection(*(set(p) for p in predictions)))
    rows = []
    for path in common:
        answers = [p[path] for p in predictions]
        if len({a["predicted"] for a in answers}) > 1:
            rows.append({"path": path, "true": answers[0]["true"], "predicted": [a["predicted"] for a in answers],
                         "probability": [a["probability"] for a in answers]})  # fmt: skip
    rows.sort(key=lambda r: -min(r["probability"]))
    return rows, len(common)


def _sheet(rows: list[dict], names: list[str], path: Path) -> Path | None:
    from imgclf.curation.sheet import thumbnail

    shown = rows[:MAX_DISAGREEMENTS]
    if not shown:
        return None
    letters = [chr(ord("A") + i) for i in range(len(names))]
    titles = [f"true {r['true']}\n" + " ".join(f"{x}:{p} {q:.2f}" for x, p, q in zip(letters, r["predicted"],
              r["probability"])) for r in shown]  # fmt: skip
    images = np.stack([thumbnail(r["path"]) for r in shown])
    return save_grid(images, path, titles=titles, cols=6, title="Where the runs disagree")


#: Written into every folder compare fills: only such a folder (or a new or empty one) is written into.
MARKER = ".imgclf-compare"


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that is a file, or a folder holding anything but an earlier comparison's page."""
    if out.exists() and not out.is_dir():
        raise ImgclfError(f"--out must be a folder. Received: {str(out)!r} (a file)")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()):
        raise ImgclfError(f"--out {str(out)!r} holds other files: compare writes compare.html, curves.png and "
                          "disagreements.png only into a new or empty folder (or one it wrote). Nothing was written.")


def compare_runs(runs: list[str | os.PathLike], out: str | os.PathLike | None = None) -> Path:
    """Write ``compare.html`` (and its pictures) for two or more run folders; returns the page's path.

    Args:
        runs: run folders (each with ``config.yaml``).
        out: folder for the page (default: ``compare-<A>-vs-<B>...`` beside the first run).

    Raises:
        ImgclfError: fewer than two runs, the same run twice, a folder that is not a run, or ``out`` a file or a
            folder of other files (only a folder compare wrote itself, marked ``.imgclf-compare``, is written again).
    """
    from imgclf.report.html import data_uri, render_page

    if len(runs) < 2:
        raise ImgclfError(f"compare needs two or more runs. Received: {len(runs)}")
    folders = [runfiles.check_run_dir(r) for r in runs]
    if len({f.resolve() for f in folders}) < len(folders):
        raise ImgclfError("compare needs different runs: a run was given twice.")
    names = [f.resolve().name for f in folders]
    out = Path(out) if out is not None else folders[0].parent / ("compare-" + "-vs-".join(names))
    _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("imgclf compare\n")
    configs = [_io.read_yaml(f / runfiles.CONFIG_FILE) or {} for f in folders]
    histories = []
    for f in folders:
        path = f / runfiles.HISTORY_FILE
        histories.append(read_history_csv(path) if path.is_file() else [])
    predictions = [_predictions(f) for f in folders]  # evaluates a run that has no record of them: before metrics
    metrics = [_io.read_json(f / runfiles.METRICS_FILE) if (f / runfiles.METRICS_FILE).is_file() else None
               for f in folders]  # fmt: skip
    rows, compared = disagreements(predictions)
    classes = sorted(set().union(*((m or {}).get("per_class", {}) for m in metrics)))
    context = {
        "names": names,
        "letters": [chr(ord("A") + i) for i in range(len(names))],
        "written": time.strftime("%Y-%m-%d %H:%M"),
        "settings": differing_settings(configs),
        "curves": data_uri(plot_curves(histories, names, out / "curves.png")),
        "metrics": metrics,
        "classes": classes,
        "disagreements": rows,
        "compared": compared,
        "sheet": (lambda p: data_uri(p) if p else None)(_sheet(rows, names, out / "disagreements.png")),
        "final": [h[-1] if h else {} for h in histories],
    }
    page = out / COMPARE_FILE
    _io.write_text(page, render_page("compare.html.j2", context))
    return page
