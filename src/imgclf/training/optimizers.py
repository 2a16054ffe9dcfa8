"""Optimizers by name, with the course's default learning rate."""

import keras

from imgclf.errors import ImgclfError

OPTIMIZERS = {
    "rmsprop": keras.optimizers.RMSprop,  # the course's choice: RMSprop(learning_rate=1e-3)
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
}


def check_optimizer(name: str) -> str:
    """Validate an optimizer name (one of :data:`OPTIMIZERS`)."""
    if name not in OPTIMIZERS:
        raise ImgclfError(f"optimizer must be one of {sorted(OPTIMIZERS)}. Received: {name!r}")
    return name


def check_learning_rate(learning_rate) -> float:
    """Validate a learning rate: a positive, finite float."""
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, (int, float))
        or not (0 < learning_rate < float("inf"))
    ):
        raise ImgclfError(f"learning_rate must be a positive float. Received: {learning_rate!r}")
    return float(learning_rate)


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer ``name`` (``rmsprop``, ``adam``, ``sgd``) with ``learning_rate``."""
    return OPTIMIZERS[check_optimizer(name)](learning_rate=check_learning_rate(learning_rate))
