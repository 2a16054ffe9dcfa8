"""Exported models run in their own runtimes — ONNX in onnxruntime, TFLite in the standalone ai-edge-litert
interpreter, SavedModel in TensorFlow — as :class:`~imgclf.inference.Predictor` objects, with nothing of Keras.

What :mod:`imgclf.export` writes: the model file, ``signature.json`` (input shape, resize, classes, and with an OOD
detector the second output, penultimate features) and ``ood.npz`` beside it. Importing this module imports neither
TensorFlow nor Keras, so ``imgclf predict model.tflite`` starts in a fraction of a second.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.errors import ImgclfError, check_one_of
from imgclf.inference import Predictor
from imgclf.ood import OodDetector
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
#: What an export says of itself, beside the model file.
SIGNATURE_FILE = "signature.json"


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

            self._interpreter = it = Interpreter(str(self.path))
            # The interpreter lists outputs in no set order; the signature names them output_0, output_1, ...
            runners = it.get_signature_list()
            details = it.get_signature_runner(next(iter(runners))).get_output_details() if runners else {}
            self._outputs = [details[k]["index"] for k in sorted(details, key=_output_number)] or [
                d["index"] for d in it.get_output_details()
            ]
            self.kind = "tflite"
        elif (self.path / "saved_model.pb").is_file():
            import tensorflow as tf

            self._serve = tf.saved_model.load(str(self.path)).signatures["serving_default"]
            self.kind = "savedmodel"
        else:
            raise ImgclfError(
                f"model must be a run folder, a .onnx or .tflite file, or a SavedModel folder. Received: {str(path)!r}"
            )

    def outputs(self, images: np.ndarray) -> list[np.ndarray]:
        """Every output float32 of uint8 images ``(n, height, width, channels)``, in the exported order:
        probabilities ``(n, outputs)``, then (with an OOD detector) penultimate features ``(n, d)``."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if self.kind == "onnx":
            return [np.asarray(o, np.float32) for o in self._session.run(None, {self._input: images})]
        if self.kind == "tflite":
            it = self._interpreter
            index = it.get_input_details()[0]["index"]
            it.resize_tensor_input(index, images.shape)
            it.allocate_tensors()
            it.set_tensor(index, images)
            it.invoke()
            return [np.asarray(it.get_tensor(i), np.float32) for i in self._outputs]
        out = self._serve(image=images)
        return [np.asarray(out[k], np.float32) for k in sorted(out, key=_output_number)]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Probabilities float32 ``(n, outputs)`` of uint8 images ``(n, height, width, channels)``."""
        return self.outputs(images)[0]

    def predict(self, data, batch_size: int = 32, verbose: int = 0, all_outputs: bool = False):
        """Keras-style ``predict`` over a uint8 array or a dataset of uint8 batches: the probabilities, or with
        ``all_outputs`` the list of every output (as a two-output Keras model returns)."""
        if isinstance(data, np.ndarray):
            batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
        else:
            batches = (np.asarray(b[0] if isinstance(b, tuple) else b) for b in data)
        parts = list(zip(*(self.outputs(b) for b in batches)))
        merged = [np.concatenate(p) for p in parts]
        return merged if all_outputs else merged[0]

    def scoring_model(self) -> _AllOutputs | None:
        """What :class:`~imgclf.inference.Predictor` calls for ``(probabilities, features)``: ``None`` when the
        export has no features output."""
        return _AllOutputs(self) if self.n_outputs > 1 else None

    @property
    def n_outputs(self) -> int:
        """How many outputs the exported graph has (2 with penultimate features)."""
        if self.kind == "onnx":
            return len(self._session.get_outputs())
        if self.kind == "tflite":
            return len(self._outputs)
        return len(self._serve.structured_outputs)


@dataclass(frozen=True)
class _AllOutputs:
    """An :class:`ExportedModel` whose ``predict`` returns every output (probabilities, features)."""

    model: ExportedModel

    def predict(self, data, batch_size: int = 32, verbose: int = 0) -> list[np.ndarray]:
        return self.model.predict(data, batch_size, verbose, all_outputs=True)


def _output_number(name: str) -> int:
    """``output_1`` -> 1 (Keras names exported outputs ``output_0``, ``output_1``, ...)."""
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


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
    ood_file = path.parent / runfiles.OOD_FILE
    ood = OodDetector.load(ood_file) if sig.get("ood") and ood_file.is_file() else None
    return Predictor(ExportedModel(path), tuple(sig["classes"]), sig["class_mode"], tuple(sig["target_size"]),
                     sig["color_mode"], sig["interpolation"], ood=ood, calibration=sig.get("calibration"))  # fmt: skip
