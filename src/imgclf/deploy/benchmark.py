"""``imgclf benchmark``: what each format of a run's model costs and gains, measured the same way for all.

For every format — ``keras`` (``model.keras``), ``tflite`` (the run's fast copy, :mod:`imgclf.deploy.fast`),
``onnx``, ``tflite-int8``, ``savedmodel`` (the run's newest export of that kind, made first when there is none,
through :func:`imgclf.deploy.export.export_run`) — in this process, one after the other:

- ``bytes``: the model file (or SavedModel folder) on disk;
- ``load_seconds``: opening it as a :class:`~imgclf.predict.predictor.Predictor`;
- ``p50_ms``/``p95_ms``: one image at a time, :data:`LATENCY_REPEATS` calls after one warm-up (probabilities and
  the "unknown" score, decoded pixels in: decoding is the same for every format);
- ``images_per_second``: every evaluation image in batches of 32;
- ``accuracy`` and ``top1_agreement`` with Keras on the same images (default: the run's validation images).

The same figures as Ultralytics' ``benchmark`` gives for its exports (format, size, latency, accuracy), for the
formats imgclf writes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.errors import ImgclfError, check_positive_int
from imgclf.runs import record as runfiles

FORMATS = ("keras", "tflite", "onnx", "tflite-int8", "savedmodel")
BENCHMARK_FILE = "benchmark.json"
LATENCY_REPEATS = 30
BATCH = 32


def _model_path(run: Path, fmt: str) -> Path:
    """The model file of ``fmt`` for the run, exporting it first when the run has none."""
    from imgclf.deploy.export import export_run
    from imgclf.deploy.runtime import FORMATS as EXPORTS

    if fmt == "keras":
        return run / runfiles.MODEL_FILE
    if fmt == "tflite" and (run / runfiles.FAST_DIR / "model.tflite").is_file():
        return run / runfiles.FAST_DIR / "model.tflite"
    base, quantize = (fmt.split("-")[0], fmt.split("-")[1]) if "-" in fmt else (fmt, None)
    name = EXPORTS[base].filename
    found = sorted((run / "export").glob(f"{fmt}*/{name}"), key=lambda p: p.stat().st_mtime)
    found = [p for p in found if quantize or not p.parent.name.startswith(f"{base}-int8")]
    if found:
        return found[-1]
    return Path(export_run(run, base, quantize=quantize, max_images=64)["path"])


def _measure(predictor, images: np.ndarray) -> dict:
    predictor.predict(images[:1])  # warm-up: the first call builds what it needs
    times = []
    for i in range(LATENCY_REPEATS):
        one = images[i % len(images)][None]
        start = time.perf_counter()
        predictor.predict(one)
        times.append(1000 * (time.perf_counter() - start))
    start = time.perf_counter()
    proba = np.concatenate([predictor.predict(images[i : i + BATCH]).probabilities
                            for i in range(0, len(images), BATCH)])  # fmt: skip
    seconds = time.perf_counter() - start
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "images_per_second": len(images) / seconds, "proba": proba}  # fmt: skip


def benchmark_run(run: str | os.PathLike, data: str | os.PathLike | None = None, formats=FORMATS,
                  max_images: int | None = 500) -> dict:  # fmt: skip
    """Benchmark a run's model in each of ``formats`` (see the module) and write ``RUN/benchmark.json``.

    Args:
        run: a run folder.
        data: labelled images (as ``imgclf evaluate`` takes them); default the run's validation images.
        formats: names from :data:`FORMATS`; Keras is measured first whatever the order (the reference).
        max_images: evaluate on at most this many images (a seeded random choice); ``None``: all.

    Returns:
        ``{"images", "data", "formats": [{"format", "path", "bytes", "load_seconds", "p50_ms", "p95_ms",
        "images_per_second", "accuracy", "top1_agreement"} or {"format", "error"}]}``.

    Raises:
        ImgclfError: not a run folder, an unknown format, no images to measure on, or ``max_images`` not positive.
    """
    from imgclf.deploy.export import decoded, size_on_disk
    from imgclf.deploy.runtime import open_predictor
    from imgclf.predict.predictor import Predictor

    run = runfiles.check_run_dir(run)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ImgclfError(f"formats must be among {list(FORMATS)}. Received: {list(formats)}")
    if max_images is not None:
        check_positive_int("max_images", max_images)
    start = time.perf_counter()
    keras_predictor = Predictor.from_run(run)
    keras_load = time.perf_counter() - start
    if data is not None:
        from imgclf.data.folders import load_eval_samples

        samples, described = load_eval_samples(data, keras_predictor.classes), str(Path(data).resolve())
    else:
        record = runfiles.RunConfig.read(run)
        dataset = record.load_dataset()
        if dataset is None or dataset.validation is None:
            raise ImgclfError("the run has no validation images to measure on: give DATA.")
        samples, described = dataset.validation, f"{record.data['path']} (validation)"
    images, labels = decoded(keras_predictor, samples, max_images)
    if not len(images):
        raise ImgclfError("none of the benchmark images can be read.")
    rows, reference = [], None
    for fmt in ["keras", *[f for f in formats if f != "keras"]]:
        try:
            path = _model_path(run, fmt)
            if fmt == "keras":
                predictor, load = keras_predictor, keras_load
            else:
                t0 = time.perf_counter()
                predictor = open_predictor(path)
                load = time.perf_counter() - t0
            measured = _measure(predictor, images)
        except ImgclfError as exc:
            rows.append({"format": fmt, "error": str(exc)})
            continue
        top = measured.pop("proba").argmax(axis=1)
        reference = top if reference is None else reference
        rows.append({"format": fmt, "path": str(path), "bytes": size_on_disk(path), "load_seconds": load, **measured,
                     "accuracy": float((top == labels).mean()),
                     "top1_agreement": float((top == reference).mean())})  # fmt: skip
    rows = [r for r in rows if r["format"] in formats]
    result = {"images": int(len(images)), "data": described, "formats": rows}
    _io.write_json(run / BENCHMARK_FILE, result)
    return result
