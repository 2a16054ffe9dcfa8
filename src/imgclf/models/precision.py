"""Numeric precision of a model, set per layer: never through Keras' process-wide dtype policy.

Models are built in float32. :func:`with_precision` rebuilds a model with every layer given an explicit
dtype policy (``keras.models.clone_model``) and copies the weights over, so the same function turns a model
into its ``mixed_bfloat16`` training twin and a trained model back into the float32 inference model that is
saved (``model.keras``) and exported. The output layer always stays float32, so probabilities and the loss
keep full precision (the Keras mixed-precision guide).
"""

from __future__ import annotations

import keras

from imgclf.errors import check_one_of
from imgclf.settings import PRECISIONS  # noqa: F401  (numeric precisions, the setting's declared choices)

#: Name of the output layer, which computes in float32 under every policy.
OUTPUT_LAYER = "output"


def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, trains_backbone: bool = True) -> str:
    """The Keras dtype policy for ``precision``.

    ``auto`` is ``mixed_bfloat16`` where the CPU computes bfloat16 natively (:func:`cpu_has_bf16`) and the job
    trains its convolutions (a ConvNet from scratch, a fine-tuned backbone), else ``float32``. A frozen backbone
    only runs forward, and there bfloat16 was measured slower, not faster (``bench/time_to_model.py``, SqueezeNet
    over cats_and_dogs_filtered, the features pass: 19.2 s float32, 26.8 s bfloat16 on an AVX-512-BF16 AMD EPYC;
    ``bench/README.md``), while training ``course_small`` was 1.6x faster in bfloat16 on the same CPU
    (``bench/epoch_time.py``: 8.30 → 5.19 s an epoch).

    Args:
        precision: ``float32``, ``mixed_bfloat16`` or ``auto``.
        trains_backbone: False for a frozen pretrained backbone (only the head learns).

    Raises:
        ImgclfError: unknown ``precision``.
    """
    check_one_of("precision", precision, list(PRECISIONS))
    if precision == "auto":
        return "mixed_bfloat16" if trains_backbone and cpu_has_bf16() else "float32"
    return precision


def _hidden(model: keras.Model) -> list:
    return [
        layer for layer in model.layers if layer.name != OUTPUT_LAYER and not isinstance(layer, keras.layers.InputLayer)
    ]


def model_precision(model: keras.Model) -> str:
    """The dtype policy of a model's hidden layers (``float32``, ``mixed_bfloat16``), or ``"mixed"`` when
    they differ."""
    names = {layer.dtype_policy.name for layer in _hidden(model)}
    return names.pop() if len(names) == 1 else "mixed"


def with_precision(model: keras.Model, precision: str) -> keras.Model:
    """``model`` rebuilt with every layer but the output on the dtype policy ``precision``, same weights.

    Layer names, ``trainable`` flags and the uint8 input are kept; the optimizer is not (compile the result).
    Returns ``model`` itself when it already has that precision.

    Args:
        model: a functional Keras model.
        precision: ``float32``, ``mixed_bfloat16`` or ``auto`` (:func:`resolve_precision`).

    Raises:
        ImgclfError: unknown ``precision``.
    """
    policy = resolve_precision(precision)
    if model_precision(model) == policy:
        return model

    def clone(layer):
        config = layer.get_config()
        if layer.name != OUTPUT_LAYER:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin


def inference_model(model: keras.Model) -> keras.Model:
    """The float32, uncompiled twin of a trained model: what ``model.keras`` holds and exports start from.

    It loads with plain ``keras.saving.load_model`` (no optimizer, no custom class) and computes in float32
    on any CPU, whatever precision training used.
    """
    twin = with_precision(model, "float32")
    # A new functional model over the same layers carries no compile state (clone_model keeps the optimizer).
    return keras.Model(twin.input, twin.output, name=model.name)
