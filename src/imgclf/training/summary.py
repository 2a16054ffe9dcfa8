"""A plain-text summary of a model: what ``summary.txt`` in a run folder holds."""

from __future__ import annotations

import keras
import numpy as np


def model_summary(model: keras.Model) -> str:
    """One line per layer (name, type, output shape, parameters), then total, trainable and non-trainable
    parameter counts."""
    rows = [("Layer (type)", "Output shape", "Param #")]
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None and hasattr(shape, "shape") else "?"
        rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f'Model: "{model.name}"']
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = model.count_params()
    lines += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(lines) + "\n"
