"""Commands that use a trained run: ``predict``, ``evaluate``, ``export``, ``serve`` and ``benchmark``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from imgclf.cli._common import app, err, field, load_api, out, print_metrics
from imgclf.cli._settings import with_these_settings_options

#: How ``evaluate`` reads a label table: the options of :class:`imgclf.data.tables.TableColumns`.
TABLE_COLUMNS = ("images", "x_col", "y_col", "suffix", "class_names", "split_col", "group_col")


def _table_options(owner: Path, given: dict):
    """How to read a label table given to ``evaluate``: the options given, else what the run was trained with
    (its ``config.yaml``), so ``imgclf evaluate RUN TABLE`` reads the table as ``imgclf train TABLE`` did."""
    from imgclf.data.tables import TableColumns
    from imgclf.errors import ImgclfError
    from imgclf.runs.record import RunConfig

    try:
        recorded = RunConfig.read(owner).settings
    except (OSError, ValueError, ImgclfError):  # an export without its run: the options given only
        recorded = {}
    return TableColumns(**{k: given.get(k) if given.get(k) is not None else
                           (recorded.get(k) if isinstance(recorded.get(k), str) else None)
                           for k in TABLE_COLUMNS})  # fmt: skip

ENGINE_HELP = (
    "auto: a run's TensorFlow-free copy (RUN/fast/) when it passed its check, else Keras; keras, tflite "
    "or onnx forces one."
)


def open_engine(run: Path, engine: str):
    """The predictor of a run folder or export for ``--engine``: the fast copy without importing TensorFlow when
    :func:`imgclf.deploy.fast.choose_engine` picks it, else Keras (saying why when a copy was passed over)."""
    from imgclf.deploy.fast import choose_engine

    model, note = choose_engine(run, engine)
    if note:
        err.print(note)
    target = model if model is not None else run
    if target.suffix.lower() not in (".onnx", ".tflite"):  # an ONNX or TFLite file runs without TensorFlow
        load_api()
    from imgclf.deploy.runtime import open_predictor

    return open_predictor(target)


@app.command()
def predict(
    run: Path = typer.Argument(
        ..., help="Run folder written by `imgclf train`, or a model written by `imgclf export`."
    ),
    images: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per line."),
    crop: str | None = typer.Option(None, help="x,y,w,h: cut this box (pixels) out of every image first."),
    tta: bool = typer.Option(False, help="Test-time augmentation: average 8 flipped and cropped views."),
    engine: str = typer.Option("auto", help=ENGINE_HELP),
):
    """Predict the class of new images: path, label (or unknown), probability per line."""
    from imgclf.errors import ImgclfError
    from imgclf.predict.items import predict_items

    box = None
    if crop is not None:
        try:
            box = tuple(int(v) for v in crop.split(","))
        except ValueError:
            raise ImgclfError(f"crop must be x,y,w,h in pixels. Received: {crop!r}") from None
    records = predict_items(open_engine(run, engine), images, crop=box, tta=tta)
    unreadable = unknown = 0
    for r in records:
        path, label = field(r["path"]), field(r["label"] or "")
        if r["label"] is None:  # unreadable: say why, keep going
            unreadable += 1
            print(json.dumps(r) if as_json else f"{path}\t-\tunreadable: {field(r['error'])}")
        elif as_json:
            print(json.dumps({**r, "probability": round(r["probability"], 6),
                              "probabilities": {c: round(p, 6) for c, p in r["probabilities"].items()}}))  # fmt: skip
        elif r.get("unknown"):  # unlike every training image: no class is claimed
            unknown += 1
            print(f"{path}\tunknown\t{r['probability']:.4f}\t(closest class: {label})")
        else:
            print(f"{path}\t{label}\t{r['probability']:.4f}")
    if unreadable:
        err.print(f"Skipped {unreadable} unreadable file(s).")
    if unknown:
        err.print(f"{unknown} image(s) unlike the training images: answered unknown (ood_score above the run's "
                  "threshold; see --json).")  # fmt: skip


@app.command()
@with_these_settings_options(*TABLE_COLUMNS)
def evaluate(
    run: Path = typer.Argument(
        ..., help="Run folder written by `imgclf train`, or a model written by `imgclf export`."
    ),
    data: str = typer.Argument(
        ..., help="Labelled images: its test/ or validation/ split, or DATA/<class>/, or a named dataset."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    ood: Path | None = typer.Option(
        None, help="Folder of other images (none of the classes): how well each OOD score tells them from DATA."
    ),
    engine: str = typer.Option("auto", help=ENGINE_HELP),
    **options,
):
    """Evaluate a trained model: metrics, confusion matrix, ROC/PR, worst mistakes (with Grad-CAM through Keras)
    (into RUN/evaluations/<DATA's name>/; the run's own metrics.json stays)."""
    predictor = open_engine(run, engine)
    from imgclf.data.folders import load_eval_samples
    from imgclf.data.named import resolve
    from imgclf.evaluation.interpretation import further_evaluation_dir, write_evaluation
    from imgclf.runs.record import METRICS_FILE

    data = resolve(data)
    owner = run if run.is_dir() and (run / "model.keras").is_file() else run.parent  # an export: beside it
    folder = further_evaluation_dir(owner, data)  # the run's own record (its validation images) stays as it is
    samples = load_eval_samples(data, predictor.classes, _table_options(owner, options))
    metrics = write_evaluation(predictor, samples, folder, data=str(Path(data).resolve()))
    if ood is not None:
        from imgclf._io import write_json
        from imgclf.evaluation.unknown import ood_evaluation
        from imgclf.pipeline.records import in_memory

        samples = in_memory(samples)
        in_images = list(samples.paths) if samples.images is None else samples.images
        metrics["ood"] = {"other": str(ood.resolve()), **ood_evaluation(predictor, in_images, ood)}
        write_json(folder / METRICS_FILE, metrics)
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        print_metrics(metrics)
        for method, m in (metrics.get("ood") or {}).get("methods", {}).items():
            default = " (decides unknown)" if method == metrics["ood"]["default"] else ""
            out.print(f"ood {method:<12} AUROC {m['auroc']:.4f}  FPR at 95% TPR {m['fpr_at_95_tpr']:.4f}  "
                      f"unknown: {m['unknown_rate_in']:.1%} of DATA, {m['unknown_rate_out']:.1%} of OOD{default}")  # fmt: skip
        files = ", ".join(metrics["files"])
        err.print(f"Written to {folder}: {METRICS_FILE}, {files}")


@app.command()
def export(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    format: str = typer.Option(..., "--format", help="savedmodel, onnx or tflite."),
    quantize: str | None = typer.Option(None, help="int8 (tflite only): calibrated on training images."),
    out: Path | None = typer.Option(None, help="Folder to write into (default: RUN/export/<format>)."),
    data: Path | None = typer.Option(
        None, help="Labelled images for the parity check (default: the run's validation images)."
    ),
    max_images: int | None = typer.Option(None, help="Check on at most this many images."),
):
    """Export the model (raw uint8 pixels in, probabilities out; with the run's OOD detector, penultimate features
    as a second output and ood.npz beside it) and check it against the Keras model."""
    load_api()
    from imgclf.deploy.export import export_run

    record = export_run(run, format, out=out, quantize=quantize, data=data, max_images=max_images)
    check = record["parity"]
    if check:
        err.print(
            f"Parity on {check['images']} images: top-1 agreement {check['top1_agreement']:.4f}, "
            f"max probability difference {check['max_probability_difference']:.2e}"
            + (f", unknown agreement {check['unknown_agreement']:.4f}" if "unknown_agreement" in check else "")
        )
    else:
        err.print("No images to check the export on (the run's data is gone): give --data.")
    err.print(f"{record['bytes']:,} bytes (model.keras: {record['keras_bytes']:,}), exported in {record['seconds']} s")
    print(record["path"])


@app.command()
def serve(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this computer only)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    max_upload_mb: float = typer.Option(10.0, help="Largest request body accepted, in MB (413 beyond)."),
    batch_window_ms: float = typer.Option(5.0, help="How long concurrent requests are gathered into one batch, in ms."),
    engine: str = typer.Option("auto", help=ENGINE_HELP + " Grad-CAM always uses Keras (loaded when first asked)."),
):
    """A local web app and JSON API: drop images, see labels, probabilities and Grad-CAM (needs the serve extra)."""
    from imgclf.deploy.fast import choose_engine

    model, note = choose_engine(run, engine) if run.is_dir() else (None, None)
    if note:
        err.print(note)
    if model is None:
        load_api()
    from imgclf.deploy.serve.app import serve_run

    def announce():
        err.print(f"Serving {run} at http://{host}:{port}/  (API description: /openapi.json; Ctrl-C stops)")

    serve_run(run, host, port, announce, engine=engine, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
              batch_window_ms=batch_window_ms)  # fmt: skip


@app.command()
def benchmark(
    run: Path = typer.Argument(..., help="Run folder written by `imgclf train`."),
    data: str | None = typer.Argument(None, help="Labelled images (default: the run's validation images)."),
    formats: str = typer.Option("keras,tflite,onnx,tflite-int8,savedmodel", help="Comma-separated formats to measure."),
    max_images: int = typer.Option(500, help="Measure accuracy and throughput on at most this many images."),
    as_json: bool = typer.Option(False, "--json", help="Print benchmark.json."),
):
    """Size, load time, latency (p50/p95), throughput, accuracy and agreement with Keras of each format of a run's
    model (exporting the formats it lacks); written to RUN/benchmark.json."""
    load_api()
    from imgclf.data.named import resolve
    from imgclf.deploy.benchmark import benchmark_run

    chosen = [f.strip() for f in formats.split(",") if f.strip()]
    result = benchmark_run(run, resolve(data) if data is not None else None, chosen, max_images)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    err.print(
        f"{result['images']} images of {result['data']}; latency: one decoded image a call; load: in this "
        "process, TensorFlow already imported (a cold `imgclf predict` from the run's fast copy never imports it)"
    )
    out.print(f"{'format':<12}{'MB':>7}{'load s':>8}{'p50 ms':>9}{'p95 ms':>9}{'img/s':>8}{'accuracy':>10}{'agree':>8}")
    for r in result["formats"]:
        if "error" in r:
            out.print(f"{r['format']:<12}  not measured: {r['error']}")
            continue
        out.print(f"{r['format']:<12}{r['bytes'] / 1e6:7.2f}{r['load_seconds']:8.2f}{r['p50_ms']:9.2f}{r['p95_ms']:9.2f}"
                  f"{r['images_per_second']:8.0f}{r['accuracy']:10.4f}{r['top1_agreement']:8.4f}")  # fmt: skip
    err.print(f"Written to {run / 'benchmark.json'}")
