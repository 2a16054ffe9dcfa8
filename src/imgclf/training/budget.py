"""Memory a training run will need, checked before it is allocated.

A setting such as ``target_size=(4000, 4000)`` must end in a clear error, not in TensorFlow running out of memory
half-way through building the model (or the kernel killing the process). The estimate is deliberately simple and
on the generous side:

- activations: ``batch_size x height x width x`` :data:`ACTIVATION_VALUES_PER_PIXEL` float32 values, kept for the
  backward pass. Measured on this project's models with ``ru_maxrss`` (2 CPU cores, 40 images, 1 epoch, batch 20):
  ``chollet`` at 512x512 peaks 2.2 GB above the 0.9 GB TensorFlow start-up, about 100 values per input pixel;
  ``course_small`` about 60.
- weights: each parameter as float32 four times over (the weight, its gradient and two optimizer slots).

A run is refused when the estimate passes :data:`MEMORY_FRACTION` of the memory available: the rest is for
TensorFlow itself, the decoded-image cache and the input pipeline. (``course_small`` at 1200x1200, batch 20, is
estimated at 21.4 GB; with 22.5 GB available it was killed by the kernel during its first epoch.)
"""

from __future__ import annotations

from imgclf.errors import ImgclfError
from imgclf.pipeline.tfdata import available_memory

#: float32 activation values kept per input pixel for the backward pass (measured, rounded up; see above).
ACTIVATION_VALUES_PER_PIXEL = 100
#: Copies of each parameter while training: weight, gradient, two optimizer slots (RMSprop/Adam).
PARAMETER_COPIES = 4
#: Share of the available memory a run's estimate may take.
MEMORY_FRACTION = 0.8
GB = 1024**3


def training_memory(input_shape: tuple[int, int, int], batch_size: int, parameters: int = 0) -> dict:
    """Bytes a training step needs: ``{"activations": ..., "weights": ..., "total": ...}``.

    Args:
        input_shape: ``(height, width, channels)`` in pixels.
        batch_size: images per training step.
        parameters: the model's parameter count (0 before the model is built).
    """
    height, width, _ = input_shape
    activations = batch_size * height * width * ACTIVATION_VALUES_PER_PIXEL * 4
    weights = parameters * PARAMETER_COPIES * 4
    return {"activations": activations, "weights": weights, "total": activations + weights}


def check_training_memory(input_shape: tuple[int, int, int], batch_size: int, parameters: int = 0,
                          available: int | None = None) -> None:  # fmt: skip
    """Refuse a training run that cannot fit in memory, before allocating it.

    Args:
        input_shape: ``(height, width, channels)`` in pixels.
        batch_size: images per training step.
        parameters: the model's parameter count, once built (0 checks the activations alone).
        available: bytes available (default: :func:`imgclf.pipeline.tfdata.available_memory`).

    Raises:
        ImgclfError: the estimate (:func:`training_memory`) is above :data:`MEMORY_FRACTION` of the memory
            available, naming the target_size, batch_size and both figures.
    """
    need = training_memory(input_shape, batch_size, parameters)
    have = available_memory() if available is None else available
    if need["total"] <= MEMORY_FRACTION * have:
        return
    parts = f"activations {need['activations'] / GB:.1f} GB" + (
        f", weights with gradients and optimizer state {need['weights'] / GB:.1f} GB" if parameters else ""
    )
    raise ImgclfError(
        f"training at target_size {tuple(input_shape[:2])} with batch_size {batch_size} needs about "
        f"{need['total'] / GB:.1f} GB of memory ({parts}); {have / GB:.1f} GB is available. "
        "Use a smaller target_size or batch_size."
    )
