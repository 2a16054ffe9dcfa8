"""Models that leave imgclf: SavedModel, ONNX and TFLite exports, each checked against the Keras model.

Exports go through Keras' own ``model.export`` (``tf_saved_model``, ``onnx``, ``litert``) from the run's float32
inference model (``model.keras``), so preprocessing stays inside the exported graph: every format takes raw uint8
RGB pixels ``(batch, height, width, 3)`` and returns probabilities float32. int8 TFLite is TensorFlow Lite's
post-training quantization (``tf.lite.Optimize.DEFAULT`` with a representative dataset of training images;
TensorFlow's "Post-training integer quantization" guide), built-in ops only. Beside each model: ``classes.json``,
``signature.json`` (input shape, dtype, what the outputs mean) and ``export.json`` (the parity check: top-1
agreement and the largest probability difference against Keras on the run's validation images).

Probabilities are already calibrated (the temperature is folded into the output layer, see
:mod:`imgclf.unknown.calibrate`). When the run has an out-of-distribution detector (``ood.npz``), the exported
graph has a second output, the penultimate features float32 ``(batch, d)``, and ``ood.npz`` is copied beside it:
:func:`imgclf.deploy.runtime.open_predictor` then scores ``ood_score``/``unknown`` with
:mod:`imgclf.unknown.detector` (NumPy, no TensorFlow), exactly as for the run, and ``signature.json`` says how to
compute the default score without imgclf.

TFLite files run in the standalone ``ai-edge-litert`` interpreter (installed with imgclf: every run keeps a TFLite
copy, :mod:`imgclf.deploy.fast`); ONNX files in ``onnxruntime``, which with ``tf2onnx`` (what Keras uses to write
ONNX) comes with ``pip install "imgclf[export]"``.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.data.folders import Samples
from imgclf.deploy import graph_tflite
from imgclf.deploy.runtime import SIGNATURE_FILE, ExportedModel, _output_number, require
from imgclf.errors import ImgclfError, check_one_of, check_positive_int
from imgclf.predict.predictor import Predictor
from imgclf.runs import record as runfiles
from imgclf.unknown.detector import OodDetector

QUANTIZE = (None, "int8")
#: Training images used to calibrate int8 quantization (TensorFlow's guide: 100-500 are enough).
CALIBRATION_IMAGES = 200
EXPORT_RECORD = "export.json"
#: How each OOD method scores features, for ``signature.json`` (readers without imgclf; see
#: :mod:`imgclf.unknown.detector`).
OOD_HOW = {
    "knn": "L2-normalise the features; score = Euclidean distance to the k-th nearest row of ood.npz 'reference' "
    "(already L2-normalised)",
    "mahalanobis": "score = min over rows m of ood.npz 'means' of (f - m) @ 'precision' @ (f - m)",
    "energy": "logits = features @ 'kernel' + 'bias' (one column: [0, logit]); score = -logsumexp(logits)",
    "msp": "logits as for energy; score = -max(softmax(logits))",
}


def decoded(predictor: Predictor, samples: Samples, limit: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (n, h, w, c), labels int (n,))``: up to ``limit`` images of ``samples`` (a seeded random
    choice), decoded as for the model; unreadable files left out with their labels."""
    from imgclf.pipeline.records import in_memory

    samples = in_memory(samples)
    index = np.arange(len(samples))
    if limit is not None and limit < len(index):
        index = np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))
    labels = np.asarray(samples.labels)[index]
    if samples.images is not None:
        return predictor.image.to_model_input(samples.images[index]), labels
    images, kept = [], []
    for i, label in zip(index, labels):
        try:
            images.append(predictor.image.load(samples.paths[i]))
            kept.append(label)
        except OSError:
            continue
    if not images:
        return np.zeros((0, *predictor.input_shape), np.uint8), np.zeros(0, int)
    return np.stack(images), np.asarray(kept)


def _tflite_int8(model, calibration: np.ndarray, target: Path) -> None:
    """Full post-training int8 quantization of ``model`` through a temporary SavedModel (built-in ops only)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(os.path.join(tmp, "sm"), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(tmp, "sm"))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        data = converter.convert()
    with _io.atomic_path(target) as tmp_file:
        Path(tmp_file).write_bytes(data)


#: What the exported graph's outputs are called, in their order: the probabilities first, in every format.
OUTPUT_NAMES = ("probabilities", "features")


def name_onnx_outputs(path: Path, names) -> None:
    """Rename an ONNX file's graph outputs, in order, to ``names`` (tf2onnx calls them ``Identity:0``,
    ``Identity_1:0``), with the ``onnx`` package (tf2onnx's own dependency)."""
    import onnx

    graph_model = onnx.load(str(path))
    renamed = {out.name: new for out, new in zip(graph_model.graph.output, names)}
    for node in graph_model.graph.node:
        node.output[:] = [renamed.get(o, o) for o in node.output]
        node.input[:] = [renamed.get(i, i) for i in node.input]
    for out in graph_model.graph.output:
        out.name = renamed.get(out.name, out.name)
    onnx.checker.check_model(graph_model)
    with _io.atomic_path(path) as tmp:
        onnx.save(graph_model, str(tmp))


def order_tflite_outputs(path: Path) -> None:
    """Put a TFLite file's outputs in the order of its signature's keys (``output_0``, ``output_1``): the converter
    lists the features tensor first, so a reader taking the interpreter's output 0 got the features instead of the
    probabilities (issue 23). Rewritten with TensorFlow Lite's own ``flatbuffer_utils``; the signature maps names to
    tensors, so it reads the same either way."""
    from tensorflow.lite.tools import flatbuffer_utils

    graph_model = flatbuffer_utils.read_model(str(path))
    signature = graph_model.signatureDefs[0] if graph_model.signatureDefs else None
    if signature is None or len(signature.outputs) < 2:
        return
    names = {m.name.decode() if isinstance(m.name, bytes) else m.name: m.tensorIndex for m in signature.outputs}
    subgraph = graph_model.subgraphs[signature.subgraphIndex]
    wanted = [names[k] for k in sorted(names, key=_output_number)]
    if sorted(wanted) != sorted(int(i) for i in subgraph.outputs):
        return  # not the layout Keras writes: leave it
    subgraph.outputs = wanted
    with _io.atomic_path(path) as tmp:
        flatbuffer_utils.write_model(graph_model, str(tmp))


def parity(reference: np.ndarray, exported: np.ndarray) -> dict:
    """Top-1 agreement and the largest probability difference between two probability arrays
    ``(n, outputs)`` (one output: the probability of class 1, thresholded at 0.5)."""
    top = (lambda p: (p[:, 0] >= 0.5).astype(int)) if reference.shape[1] == 1 else (lambda p: p.argmax(axis=1))
    n = len(reference)
    return {
        "images": n,
        "top1_agreement": float((top(reference) == top(exported)).mean()) if n else None,
        "max_probability_difference": float(np.abs(reference - exported).max()) if n else None,
    }


def export_run(run: str | os.PathLike, format: str, *, out: str | os.PathLike | None = None,
               quantize: str | None = None, data: str | os.PathLike | None = None,
               max_images: int | None = None, quick: bool = False) -> dict:  # fmt: skip
    """Export a run's model and check the export against it.

    Args:
        run: a run folder.
        format: ``savedmodel``, ``onnx`` or ``tflite``.
        out: a new or empty folder to write into (default: the first new one of ``RUN/export/<format>`` or
            ``<format>-int8``, then ``-2``, ``-3``, …). Everything is written into a staging folder beside it and
            renamed into place at the end: a failed export leaves nothing, and no existing file is ever replaced.
        quantize: ``None`` (float32) or ``"int8"`` (TFLite only), calibrated on up to
            :data:`CALIBRATION_IMAGES` training images.
        data: labelled images for the parity check (default: the run's validation images, or its training images
            when it has none: the check is of the conversion, any of the run's images show it).
        max_images: check on at most this many images (a seeded random choice).
        quick: float32 TFLite through the model's traced graph (:mod:`imgclf.deploy.graph_tflite`: ~1 s instead
            of ~7 s, no SignatureDef), Keras' own export when that fails; what the run's fast copy uses.

    Returns:
        The ``export.json`` record: ``format``, ``quantize``, ``path``, ``bytes``, ``seconds`` (to export),
        ``parity`` (:func:`parity`), ``ms_per_image`` of the export and of Keras on the parity images.

    Raises:
        ImgclfError: not a run folder, unknown format or quantization, int8 without calibration images or
            outside TFLite, the format's runtime missing, ``max_images`` not a positive int, or ``out`` a file or a
            folder that is not empty.
    """
    require(format)
    check_one_of("quantize", quantize, list(QUANTIZE))
    if max_images is not None:
        check_positive_int("max_images", max_images)
    if quantize and format != "tflite":
        raise ImgclfError(f"quantize={quantize!r} applies to the tflite format. Received: format={format!r}")
    predictor = Predictor.from_run(run)
    record = runfiles.RunConfig.read(run)
    dataset = record.load_dataset()
    folder = _new_folder(Path(out)) if out is not None else _free_folder(Path(run) / "export", format, quantize)
    from imgclf.unknown.calibrate import feature_model  # Keras: not imported to predict from an export

    # With an OOD detector the graph also returns the penultimate features (what ood.npz scores).
    model = feature_model(predictor.model) if predictor.ood is not None else None
    model = model if model is not None else predictor.model
    model(np.zeros((1, *predictor.input_shape), np.uint8))  # Keras exports only a model it has called
    if quantize == "int8" and dataset is None:
        raise ImgclfError("int8 calibration needs the run's training images, and its data is gone.")
    with _io.atomic_dir(folder, note=f"imgclf export {format}") as staging:  # all of it, or nothing
        result = _write_export(predictor, record, dataset, model, staging, folder, format, quantize, data, max_images,
                               quick)  # fmt: skip
        result["keras_bytes"] = size_on_disk(Path(run) / runfiles.MODEL_FILE)
        _io.write_json(staging / EXPORT_RECORD, result)
    return result


def _new_folder(folder: Path) -> Path:
    """``folder`` when it does not exist or is an empty folder: an export never replaces anything.

    Raises:
        ImgclfError: it is a file, or a folder with something in it.
    """
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ImgclfError(
            f"out must be a new or empty folder: export never replaces files. Received: {str(folder)!r} "
            f"({'a file' if not folder.is_dir() else 'not empty'})"
        )
    return folder


def _free_folder(parent: Path, format: str, quantize: str | None) -> Path:
    """The first of ``parent/<format>[-int8]``, ``…-2``, ``…-3``, … that is new or empty."""
    base = format + (f"-{quantize}" if quantize else "")
    folder, i = parent / base, 2
    while folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        folder, i = parent / f"{base}-{i}", i + 1
    return folder


def _write_export(predictor: Predictor, record, dataset, model, folder: Path, final: Path, format: str,
                  quantize: str | None, data, max_images: int | None, quick: bool = False) -> dict:  # fmt: skip
    """Write the export into ``folder`` (a staging folder that becomes ``final``) and check it; the record."""
    spec = require(format)
    target = folder / spec.filename
    start, converter = time.perf_counter(), "keras"
    if quantize == "int8":
        calibration = decoded(predictor, dataset.train, CALIBRATION_IMAGES)[0]
        _tflite_int8(model, calibration, target)
    elif quick and format == "tflite" and graph_tflite.convert(model, target):
        converter = "graph"
    else:
        with warnings.catch_warnings():  # tf2onnx's own NumPy deprecation notices are not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(target), format=spec.keras_format, verbose=False)
        if format == "onnx":
            name_onnx_outputs(target, OUTPUT_NAMES[: len(model.outputs)])
    if format == "tflite":
        order_tflite_outputs(target)
    seconds = time.perf_counter() - start
    _io.write_json(folder / runfiles.CLASSES_FILE, list(predictor.classes))
    with_ood = model is not predictor.model
    if with_ood:
        predictor.ood.save(folder / runfiles.OOD_FILE)
    _io.write_json(folder / SIGNATURE_FILE, signature(predictor, format, quantize, with_ood))

    if data is not None:
        from imgclf.data.folders import load_eval_samples

        samples, described, split = load_eval_samples(data, predictor.classes), str(Path(data).resolve()), None
    elif dataset is not None and dataset.validation is None:  # e.g. a few-shot run that kept every image to learn
        samples, split = dataset.train, "training"
        described = f"{record.data['path']} (training: the run has no validation images)"
    else:
        samples, split = (dataset.validation if dataset is not None else None), "validation"
        described = f"{record.data['path']} (validation)" if samples is not None else None
    images = decoded(predictor, samples, max_images)[0] if samples is not None else None
    result = {"format": format, "quantize": quantize, "path": str(final / spec.filename), "bytes": size_on_disk(target),
              "seconds": round(seconds, 2), "converter": converter, "data": described, "data_split": split,
              "parity": None}  # fmt: skip
    if images is not None and len(images):
        t0 = time.perf_counter()
        reference = model.predict(images, batch_size=predictor.batch_size, verbose=0)
        t1 = time.perf_counter()
        exported = ExportedModel(target).predict(images, batch_size=predictor.batch_size, all_outputs=True)
        t2 = time.perf_counter()
        reference = reference if with_ood else [reference]
        result["parity"] = parity(np.asarray(reference[0], np.float32), exported[0])
        if with_ood:
            result["parity"].update(ood_parity(predictor.ood, reference[1], exported[1]))
        result["ms_per_image"] = {"export": 1000 * (t2 - t1) / len(images), "keras": 1000 * (t1 - t0) / len(images)}
    return result


UNKNOWN_BAND = 1e-3
"""Half-width of the band around the "unknown" threshold, relative to ``max(1, |threshold|)``, inside which an
export and Keras may answer differently without it counting as a disagreement: float rounding (TFLite's kernels,
ONNX Runtime's) moves a score by ~1e-5, and an image whose score sits on the threshold would otherwise flip the
check by chance (issue 23: 0.875 agreement on 8 images from one such image)."""


def ood_parity(detector: OodDetector, reference: np.ndarray, exported: np.ndarray) -> dict:
    """How far the export's OOD scores are from Keras', from penultimate features ``(n, d)`` float32 of the same
    images: ``max_ood_score_difference`` (of the detector's method), ``unknown_agreement`` (share of images both
    call unknown or both do not, an image with either score within :data:`UNKNOWN_BAND` of the threshold counting
    as agreeing), ``near_threshold`` (how many images were in that band) and ``unknown_band`` (its half-width, in
    score units)."""
    a, b = detector.scores(reference), detector.scores(exported)
    threshold = detector.thresholds[detector.method]
    band = UNKNOWN_BAND * max(1.0, abs(float(threshold)))
    near = (np.abs(a - threshold) <= band) | (np.abs(b - threshold) <= band)
    agree = (detector.unknown(a) == detector.unknown(b)) | near
    return {"max_ood_score_difference": float(np.abs(a - b).max()), "unknown_agreement": float(agree.mean()),
            "near_threshold": int(near.sum()), "unknown_band": band}  # fmt: skip


def signature(predictor: Predictor, format: str, quantize: str | None, with_ood: bool = False) -> dict:
    """What an exported model takes and returns (``signature.json``); with ``with_ood``, the second output
    (penultimate features) and how ``ood.npz`` beside the model scores it."""
    h, w = predictor.target_size
    binary = predictor.class_mode == "binary"
    extra = {}
    if predictor.calibration is not None:
        extra["calibration"] = {
            "temperature": predictor.calibration.get("temperature"),
            "meaning": "probabilities are already calibrated: the temperature is folded into the output layer",
        }
    if with_ood:
        ood = predictor.ood
        extra["features"] = {
            "name": _output_name(format, 1),
            "shape": [None, int(ood.kernel.shape[0])],
            "dtype": "float32",
            "meaning": "second output: penultimate features (the input of the output layer), scored against "
            f"{runfiles.OOD_FILE}",
        }
        extra["ood"] = {
            "file": runfiles.OOD_FILE,
            "method": ood.method,
            "threshold": ood.thresholds.get(ood.method),
            "false_alarm_rate": ood.false_alarm_rate,
            "k": ood.k,
            "how": OOD_HOW[ood.method] + "; unknown when score > threshold",
        }
    return {
        "format": format,
        "quantize": quantize,
        "input": {
            "shape": [None, *predictor.image.input_shape],
            "dtype": "uint8",
            "meaning": f"raw {predictor.color_mode} pixels 0-255, resized to {h}x{w} with {predictor.interpolation!r}"
            " (EXIF orientation applied); preprocessing is inside the model",
        },
        "output": {
            "name": _output_name(format, 0),
            "shape": [None, 1 if binary else len(predictor.classes)],
            "dtype": "float32",
            "meaning": f"probability of {predictor.classes[1]!r} (classes[1])"
            if binary
            else "probability of each class, in classes order",
        },
        "classes": list(predictor.classes),
        "class_mode": predictor.class_mode,
        **predictor.image.to_dict(),
        **extra,
    }


def _output_name(format: str, index: int) -> str:
    """The name under which a reader finds output ``index``: the graph output's name in ONNX; the signature's output
    key in TFLite and SavedModel (Keras names them ``output_0``, ``output_1``; TFLite's tensor order is not theirs)."""
    return OUTPUT_NAMES[index] if format == "onnx" else f"output_{index}"


def size_on_disk(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (0 when absent)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
