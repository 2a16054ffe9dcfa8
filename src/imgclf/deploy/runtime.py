"""Exported models run in their own runtimes — ONNX in onnxruntime, TFLite in the standalone ai-edge-litert
interpreter, SavedModel in TensorFlow — as :class:`~imgclf.predict.predictor.Predictor` objects, with nothing of Keras.

What :mod:`imgclf.deploy.export` writes: the model file, ``signature.json`` (input shape, resize, classes, and with
an OOD detector the second output, penultimate features) and ``ood.npz`` beside it. Importing this module imports
neither TensorFlow nor Keras, so ``imgclf predict model.tflite`` starts in a fraction of a second.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.data.images import INTERPOLATIONS, ImageSpec
from imgclf.errors import ImgclfError, check_one_of
from imgclf.predict.predictor import Predictor
from imgclf.runs import record as runfiles
from imgclf.unknown.detector import OodDetector


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
    """An exported model run in its own runtime: a :class:`~imgclf.predict.predictor.ScoringModel` (Keras'
    ``predict`` interface, what :class:`~imgclf.predict.predictor.Predictor` calls) that also
    :class:`~imgclf.predict.predictor.ScoresFeatures` (``scoring_model``).

    Args:
        path: a ``.onnx`` file (onnxruntime), a ``.tflite`` file (ai-edge-litert) or a SavedModel folder
            (TensorFlow).

    Raises:
        ImgclfError: an unknown kind of file, or its runtime missing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        try:
            self._open(suffix, path)
        except ImgclfError:
            raise
        except Exception as exc:  # noqa: BLE001  (each runtime has its own errors for a file that is not its format)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ImgclfError(f"cannot load the exported model {str(path)!r}: {first}") from None

    def _open(self, suffix: str, path) -> None:
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
        """What :class:`~imgclf.predict.predictor.Predictor` calls for ``(probabilities, features)``: ``None`` when the
        export has no features output."""
        return _AllOutputs(self) if self.n_outputs > 1 else None

    @property
    def input_shape(self) -> tuple:
        """The exported input's shape without the batch axis, ``(height, width, channels)``; ``None`` for an axis
        the graph leaves open."""
        if self.kind == "onnx":
            shape = self._session.get_inputs()[0].shape[1:]
        elif self.kind == "tflite":
            shape = self._interpreter.get_input_details()[0]["shape_signature"][1:]
        else:
            shape = next(iter(self._serve.structured_input_signature[1].values())).shape[1:]
        return tuple(int(v) if isinstance(v, (int, np.integer)) and v > 0 else None for v in shape)

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
    """A :class:`~imgclf.predict.predictor.Predictor` for a run folder or an exported model (``signature.json`` and
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
    try:
        sig = _io.read_json(signature)
    except (OSError, ValueError) as exc:
        raise ImgclfError(f"cannot read {str(signature)!r}: {str(exc)[:200]}") from None
    model = ExportedModel(path)
    problem = _signature_problem(sig, model)
    if problem:
        raise ImgclfError(f"{str(signature)!r} does not describe the model beside it: {problem}")
    ood_file = path.parent / runfiles.OOD_FILE
    ood = OodDetector.load(ood_file) if sig.get("ood") and ood_file.is_file() else None
    if ood is not None:
        features = sig.get("features") if isinstance(sig.get("features"), dict) else {}
        width = (features.get("shape") or [None])[-1]
        problem = ood.problem(features=width, outputs=_units(sig))
        if problem or model.n_outputs < 2:
            raise ImgclfError(f"{str(ood_file)!r} does not fit the model beside it: {problem or 'no features output'}")
    return Predictor(model, tuple(sig["classes"]), sig["class_mode"], ImageSpec.from_dict(sig), ood=ood,
                     calibration=sig.get("calibration"))  # fmt: skip


def _units(sig: dict) -> int:
    return 1 if sig["class_mode"] == "binary" else len(sig["classes"])


def _signature_problem(sig, model: ExportedModel) -> str | None:
    """What in a ``signature.json`` disagrees with what imgclf writes or with the model's own input, or ``None``."""

    if not isinstance(sig, dict):
        return f"it must hold a mapping. Received: {type(sig).__name__}"
    classes, size = sig.get("classes"), sig.get("target_size")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        return f"classes must be a list of two or more names. Received: {str(classes)[:200]}"
    if len(set(classes)) != len(classes):
        return "classes must be distinct names"
    if sig.get("class_mode") not in ("binary", "categorical", "sparse"):
        return f"class_mode must be binary, categorical or sparse. Received: {str(sig.get('class_mode'))[:50]!r}"
    if sig["class_mode"] == "binary" and len(classes) != 2:
        return f"class_mode binary needs two classes. Received: {len(classes)}"
    if sig.get("color_mode") not in ("rgb", "grayscale"):
        return f"color_mode must be rgb or grayscale. Received: {str(sig.get('color_mode'))[:50]!r}"
    if not isinstance(sig.get("interpolation"), str) or sig["interpolation"] not in INTERPOLATIONS:
        return f"interpolation must be one of {list(INTERPOLATIONS)}. Received: {str(sig.get('interpolation'))[:50]!r}"
    ok = isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    expected = (*size, 3 if sig["color_mode"] == "rgb" else 1) if ok else None
    actual = model.input_shape
    if not ok or any(a is not None and a != e for a, e in zip(actual, expected)) or None in actual:
        return f"target_size {str(size)[:50]} ({sig['color_mode']}) is not the model's input {actual}"
    return None
