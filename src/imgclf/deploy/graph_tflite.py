"""Float32 TFLite straight from the model's traced graph: the quick conversion the run's fast copy uses.

Keras' ``model.export(format="litert")`` writes a temporary SavedModel and converts that (``ExportArchive`` →
``TFLiteConverter.from_saved_model``): ~7 s for a SqueezeNet model on two cores, most of it writing and reading the
SavedModel. TensorFlow Lite's converter can instead take one traced ``tf.function`` and freeze its variables into
constants itself (``TFLiteConverter.from_concrete_functions(funcs, trackable_obj)`` with the function as
``trackable_obj``: TensorFlow's "concrete function conversion pipeline", no SavedModel) — ~1 s for the same model,
the same kernels, the same numbers (the parity check measures it).

What differs: the file has no SignatureDef (Keras' export has a ``serving_default`` one); its outputs are the
model's outputs in order (probabilities, then penultimate features), which :func:`convert` checks before writing.
``imgclf export --format tflite`` keeps Keras' path, for the signature mobile runtimes look for.
"""

from __future__ import annotations

import os
from pathlib import Path

from imgclf import _io


def convert(model, target: str | os.PathLike) -> bool:
    """Write ``model`` (a built Keras model taking uint8 images ``(batch, height, width, channels)``) as float32
    TFLite to ``target`` through its traced graph; ``False`` (and nothing written) when the converter refuses it or
    the file's outputs are not the model's, in order — the caller then takes Keras' own export.

    Source: TensorFlow Lite converter guide, "Convert concrete functions"
    (https://www.tensorflow.org/lite/models/convert/convert_models).
    """
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), model.inputs[0].dtype)

    def serve(images):
        outputs = model(images, training=False)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    function = tf.function(serve, input_signature=[spec], autograph=False)
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
        data = converter.convert()
        details = Interpreter(model_content=data).get_output_details()
    except Exception:  # noqa: BLE001  (the converter's own errors vary: Keras' path is the fallback)
        return False
    wanted = [tuple(int(d) for d in o.shape[1:]) for o in model.outputs]
    if [tuple(int(d) for d in d["shape"][1:]) for d in details] != wanted:
        return False
    with _io.atomic_path(Path(target)) as tmp:
        Path(tmp).write_bytes(data)
    return True
