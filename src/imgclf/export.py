"""Models that leave imgclf: SavedModel, ONNX and TFLite exports, each checked against the Keras model.

Exports go through Keras' own ``model.export`` (``tf_saved_model``, ``onnx``, ``litert``) from the run's float32
inference model (``model.keras``), so preprocessing stays inside the exported graph: every format takes raw uint8
RGB pixels ``(batch, height, width, 3)`` and returns probabilities float32. int8 TFLite is TensorFlow Lite's
post-training quantization (``tf.lite.Optimize.DEFAULT`` with a representative dataset of training images;
TensorFlow's "Post-training integer quantization" guide), built-in ops only. Beside each model: ``classes.json``,
``signature.json`` (input shape, dtype, what the output means) and ``export.json`` (the parity check: top-1
agreement and the largest probability difference against Keras on the run's validation images).

ONNX files run in ``onnxruntime``, TFLite files in the standalone ``ai-edge-litert`` interpreter; both (and
``tf2onnx``, which Keras uses to write ONNX) come with ``pip install "imgclf[export]"``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.data.folders import Samples
from imgclf.data.images import load_image, to_model_input
from imgclf.errors import ImgclfError, check_one_of
from imgclf.inference import Predictor
from imgclf.training import run as runfiles


@dataclass(frozen=True)
class Format:
    """An export format: its Keras ``model.export`` name, the file (or folder) it writes, and the modules it
    needs."""

    keras_format: str
    filename: str
    needs: tuple[str, ...]


FORMATS = {
    "savedmodel": Format("tf_saved_model", "saved_model", ()),
    "onnx": Format("onnx", "model.onnx", ("tf2onnx", "onnxruntime")),
    "tflite": Format("litert", "model.tflite", ("ai_edge_litert",)),
}
QUANTIZE = (None, "int8")
#: Training images used to calibrate int8 quantization (TensorFlow's guide: 100-500 are enough).
CALIBRATION_IMAGES = 200
SIGNATURE_FILE = "signature.json"
EXPORT_RECORD = "export.json"


def require(format: str) -> Format:
    """The :class:`Format` named ``format``, once its runtime modules are importable.

    Raises:
        ImgclfError: unknown format, or a module missing (the message names the extra to install).
    """
    check_one_of("format", format, list(FORMATS))
    spec = FORMATS[format]
    missing = [m for m in spec.needs if importlib.util.find_spec(m) is None]
    if missing:
        raise ImgclfError(
            f"format {format!r} needs {', '.join(missing)}: install the export extra, pip install 'imgclf[export]'."
        )
    return spec


class ExportedModel:
    """An exported model run in its own runtime, with Keras' ``predict`` interface (what
    :class:`~imgclf.inference.Predictor` calls).

    Args:
        path: a ``.onnx`` file (onnxruntime), a ``.tflite`` file (ai-edge-litert) or a SavedModel folder
            (TensorFlow).

    Raises:
        ImgclfError: an unknown kind of file, or its runtime missing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix == ".onnx":
            require("onnx")
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            self._input = self._session.get_inputs()[0].name
            self.kind = "onnx"
        elif suffix == ".tflite":
            require("tflite")
            from ai_edge_litert.interpreter import Interpreter

            self._interpreter = Interpreter(str(self.path))
            self.kind = "tflite"
        elif (self.path / "saved_model.pb").is_file():
            import tensorflow as tf

            self._serve = tf.saved_model.load(str(self.path)).signatures["serving_default"]
            self.kind = "savedmodel"
        else:
            raise ImgclfError(
                f"model must be a run folder, a .onnx or .tflite file, or a SavedModel folder. Received: {str(path)!r}"
            )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Probabilities float32 ``(n, outputs)`` of uint8 images ``(n, height, width, channels)``."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if self.kind == "onnx":
            return np.asarray(self._session.run(None, {self._input: images})[0], np.float32)
        if self.kind == "tflite":
            it = self._interpreter
            index = it.get_input_details()[0]["index"]
            it.resize_tensor_input(index, images.shape)
            it.allocate_tensors()
            it.set_tensor(index, images)
            it.invoke()
            return np.asarray(it.get_tensor(it.get_output_details()[0]["index"]), np.float32)
        (out,) = self._serve(image=images).values()
        return np.asarray(out, np.float32)

    def predict(self, data, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Keras-style ``predict`` over a uint8 array or a dataset of uint8 batches."""
        if isinstance(data, np.ndarray):
            batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
        else:
            batches = (np.asarray(b[0] if isinstance(b, tuple) else b) for b in data)
        return np.concatenate([self(b) for b in batches])


def open_predictor(path: str | os.PathLike) -> Predictor:
    """A :class:`~imgclf.inference.Predictor` for a run folder or an exported model (``signature.json`` and
    ``classes.json`` beside it say how to feed it), for ``imgclf predict`` and ``imgclf evaluate``.

    Raises:
        ImgclfError: neither a run folder nor an export, or the export's runtime is missing.
    """
    path = Path(path)
    if not path.exists() or (path.is_dir() and not (path / "saved_model.pb").is_file()):
        return Predictor.from_run(path)  # a run folder (its error says what a run folder needs)
    signature = path.parent / SIGNATURE_FILE  # beside the .onnx / .tflite file or the saved_model folder
    if not signature.is_file():
        raise ImgclfError(
            f"model must be a run folder or a model written by `imgclf export` (with {SIGNATURE_FILE} beside it). "
            f"Received: {str(path)!r}"
        )
    sig = _io.read_json(signature)
    return Predictor(ExportedModel(path), tuple(sig["classes"]), sig["class_mode"], tuple(sig["target_size"]),
                     sig["color_mode"], sig["interpolation"])  # fmt: skip


def _decoded(predictor: Predictor, samples: Samples, limit: int | None, seed: int = 0) -> np.ndarray:
    """Up to ``limit`` images of ``samples`` (a seeded random choice), decoded as for the model; unreadable files
    left out."""
    index = np.arange(len(samples))
    if limit is not None and limit < len(index):
        index = np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))
    if samples.images is not None:
        return to_model_input(samples.images[index], predictor.target_size, predictor.color_mode,
                              predictor.interpolation)  # fmt: skip
    images = []
    for i in index:
        try:
            images.append(load_image(samples.paths[i], predictor.target_size, predictor.color_mode,
                                     predictor.interpolation))  # fmt: skip
        except OSError:
            continue
    return np.stack(images) if images else np.zeros((0, *predictor.input_shape), np.uint8)


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
               max_images: int | None = None) -> dict:  # fmt: skip
    """Export a run's model and check the export against it.

    Args:
        run: a run folder.
        format: ``savedmodel``, ``onnx`` or ``tflite``.
        out: folder to write into (default ``RUN/export/<format>`` or ``<format>-int8``); created.
        quantize: ``None`` (float32) or ``"int8"`` (TFLite only), calibrated on up to
            :data:`CALIBRATION_IMAGES` training images.
        data: labelled images for the parity check (default: the run's validation images).
        max_images: check on at most this many images (a seeded random choice).

    Returns:
        The ``export.json`` record: ``format``, ``quantize``, ``path``, ``bytes``, ``seconds`` (to export),
        ``parity`` (:func:`parity`), ``ms_per_image`` of the export and of Keras on the parity images.

    Raises:
        ImgclfError: not a run folder, unknown format or quantization, int8 without calibration images or
            outside TFLite, or the format's runtime missing.
    """
    spec = require(format)
    check_one_of("quantize", quantize, list(QUANTIZE))
    if quantize and format != "tflite":
        raise ImgclfError(f"quantize={quantize!r} applies to the tflite format. Received: format={format!r}")
    predictor = Predictor.from_run(run)
    record = runfiles.RunConfig.read(run)
    dataset = record.load_dataset()
    folder = Path(out) if out is not None else Path(run) / "export" / (format + (f"-{quantize}" if quantize else ""))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    predictor.model(np.zeros((1, *predictor.input_shape), np.uint8))  # Keras exports only a model it has called
    start = time.perf_counter()
    if quantize == "int8":
        if dataset is None:
            raise ImgclfError("int8 calibration needs the run's training images, and its data is gone.")
        calibration = _decoded(predictor, dataset.train, CALIBRATION_IMAGES)
        _tflite_int8(predictor.model, calibration, target)
    else:
        if target.exists() and target.is_dir():
            shutil.rmtree(target)
        with warnings.catch_warnings():  # tf2onnx's own NumPy deprecation notices are not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            predictor.model.export(str(target), format=spec.keras_format, verbose=False)
    seconds = time.perf_counter() - start
    _io.write_json(folder / runfiles.CLASSES_FILE, list(predictor.classes))
    _io.write_json(folder / SIGNATURE_FILE, signature(predictor, format, quantize))

    if data is not None:
        from imgclf.data.folders import load_eval_samples

        samples, described = load_eval_samples(data, predictor.classes), str(Path(data).resolve())
    else:
        samples = dataset.validation if dataset is not None else None
        described = f"{record.data['path']} (validation)" if samples is not None else None
    images = _decoded(predictor, samples, max_images) if samples is not None else None
    result = {"format": format, "quantize": quantize, "path": str(target), "bytes": _size(target),
              "keras_bytes": _size(Path(run) / runfiles.MODEL_FILE), "seconds": round(seconds, 2), "data": described,
              "parity": None}  # fmt: skip
    if images is not None and len(images):
        t0 = time.perf_counter()
        reference = predictor.model.predict(images, batch_size=predictor.batch_size, verbose=0)
        t1 = time.perf_counter()
        exported = ExportedModel(target).predict(images, batch_size=predictor.batch_size)
        t2 = time.perf_counter()
        result["parity"] = parity(np.asarray(reference, np.float32), exported)
        result["ms_per_image"] = {"export": 1000 * (t2 - t1) / len(images), "keras": 1000 * (t1 - t0) / len(images)}
    _io.write_json(folder / EXPORT_RECORD, result)
    return result


def signature(predictor: Predictor, format: str, quantize: str | None) -> dict:
    """What an exported model takes and returns (``signature.json``)."""
    h, w = predictor.target_size
    binary = predictor.class_mode == "binary"
    return {
        "format": format,
        "quantize": quantize,
        "input": {
            "shape": [None, h, w, 3 if predictor.color_mode == "rgb" else 1],
            "dtype": "uint8",
            "meaning": f"raw {predictor.color_mode} pixels 0-255, resized to {h}x{w} with {predictor.interpolation!r}"
            " (EXIF orientation applied); preprocessing is inside the model",
        },
        "output": {
            "shape": [None, 1 if binary else len(predictor.classes)],
            "dtype": "float32",
            "meaning": f"probability of {predictor.classes[1]!r} (classes[1])"
            if binary
            else "probability of each class, in classes order",
        },
        "classes": list(predictor.classes),
        "class_mode": predictor.class_mode,
        "target_size": [h, w],
        "color_mode": predictor.color_mode,
        "interpolation": predictor.interpolation,
    }


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
