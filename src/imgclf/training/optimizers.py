"""Optimizers by name, with the course's default learning rate, and fused update steps for CPUs.

Keras 3 writes each optimizer's update as a chain of element-wise ops (RMSprop: about ten), and TensorFlow runs
each as its own kernel, reading and writing the whole weight tensor every time. For ``course_small`` (9.5 M
weights, nearly all in one Dense kernel) that memory traffic is ~20 % of a float32 training epoch on 2 cores
(``bench/optimizer_step.py``: 7.6 s with Keras' RMSprop, 6.8 s fused, 6.2 s with two-kernel SGD).
:class:`RMSprop` and :class:`Adam` here compute the very same update with one TensorFlow training kernel per
weight tensor (``ResourceApplyRMSProp`` / ``ResourceApplyCenteredRMSProp`` /
``ResourceApplyAdam``: one pass over memory); on other Keras backends they are Keras' own.
"""

from __future__ import annotations

import keras

from imgclf.settings import ADAMW_WEIGHT_DECAY, LR_SCHEDULES, check_setting  # noqa: F401  (re-exported)


def _fused() -> bool:
    return keras.backend.backend() == "tensorflow"


class _Scratch:
    """A plain holder, so that TensorFlow's tracking neither saves nor exports the variables in it."""

    def __init__(self):
        self.variables: list = []


@keras.saving.register_keras_serializable(package="imgclf")
class RMSprop(keras.optimizers.RMSprop):
    """``keras.optimizers.RMSprop`` (same arguments, same update, same saved state) with a fused update step.

    The update (Hinton's lecture 6e; Keras' formula): ``ms = rho·ms + (1 - rho)·g²``,
    ``var -= lr·g / sqrt(ms + epsilon)`` (with momentum: ``mom = momentum·mom + lr·g / sqrt(...)``,
    ``var -= mom``; centered: ``ms - mg²`` under the root), as TensorFlow's ``ApplyRMSProp`` kernel computes it.
    With ``momentum=0`` that kernel still writes a momentum buffer; it is scratch space, not optimizer state,
    so it is neither saved nor counted in ``optimizer.variables``.
    """

    def build(self, var_list):
        super().build(var_list)
        self._scratch = _Scratch()
        if _fused() and not self.momentum:
            import tensorflow as tf

            with tf.init_scope():
                self._scratch.variables = [
                    tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name="rmsprop_scratch") for v in var_list
                ]

    def update_step(self, gradient, variable, learning_rate):
        if not _fused():
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        i = self._get_variable_index(variable)
        dtype = variable.dtype
        mom = self._momentums[i] if self.momentum else self._scratch.variables[i]
        common = dict(
            ms=self._velocities[i].handle,
            mom=mom.handle,
            lr=tf.cast(learning_rate, dtype),
            rho=tf.constant(self.rho, dtype),
            momentum=tf.constant(self.momentum, dtype),
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
        if self.centered:
            tf.raw_ops.ResourceApplyCenteredRMSProp(var=variable.handle, mg=self._average_gradients[i].handle, **common)
        else:
            tf.raw_ops.ResourceApplyRMSProp(var=variable.handle, **common)


@keras.saving.register_keras_serializable(package="imgclf")
class Adam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` (same arguments, update and saved state; Kingma & Ba 2015) with a fused
    update step (TensorFlow's ``ApplyAdam``); ``amsgrad=True`` uses Keras' own update."""

    def update_step(self, gradient, variable, learning_rate):
        if not _fused() or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        i = self._get_variable_index(variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[i].handle,
            v=self._velocities[i].handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.constant(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


OPTIMIZERS = {
    "rmsprop": RMSprop,  # the course's choice: RMSprop(learning_rate=1e-3)
    "adam": Adam,
    "adamw": keras.optimizers.AdamW,  # Loshchilov & Hutter 2019: Adam with decoupled weight decay
    "sgd": keras.optimizers.SGD,
}
#: Warm-up starts at this fraction of the peak learning rate.
WARMUP_START = 0.1


def learning_rate_schedule(learning_rate: float, schedule: str, total_steps: int, warmup_steps: int = 0):
    """The learning rate over ``total_steps`` optimizer steps, built from Keras' own ``CosineDecay``.

    ``constant``: ``learning_rate`` throughout; ``cosine``: annealed from ``learning_rate`` to 0 by the last step
    along a half cosine (SGDR without restarts, Loshchilov & Hutter 2017). With ``warmup_steps``, the rate first
    rises linearly from ``learning_rate * WARMUP_START`` to ``learning_rate`` (gradual warm-up, Goyal et al. 2017);
    warm-up then cosine is the shape of Smith's one-cycle policy (fastai's ``fit_one_cycle``).

    Returns:
        ``learning_rate`` (a float) for ``constant`` without warm-up, else a
        ``keras.optimizers.schedules.CosineDecay`` (saved with the optimizer, so a resumed run goes on along it).

    Raises:
        ImgclfError: an unknown ``schedule``.
    """
    check_setting("lr_schedule", schedule)
    warmup_steps = max(0, min(int(warmup_steps), total_steps - 1))
    if schedule == "constant" and not warmup_steps:
        return learning_rate
    start = learning_rate * WARMUP_START if warmup_steps else learning_rate
    return keras.optimizers.schedules.CosineDecay(
        start, decay_steps=max(1, total_steps - warmup_steps), alpha=1.0 if schedule == "constant" else 0.0,
        warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps,
    )  # fmt: skip


def check_optimizer(name: str) -> str:
    """Validate an optimizer name (the ``optimizer`` setting's declared choices, the keys of :data:`OPTIMIZERS`)."""
    return check_setting("optimizer", name)


def check_learning_rate(learning_rate) -> float:
    """Validate a learning rate: a positive, finite float (the ``learning_rate`` setting's declared interval)."""
    return check_setting("learning_rate", learning_rate)


def make_optimizer(name: str, learning_rate, weight_decay: float | None = None) -> keras.optimizers.Optimizer:
    """A fresh Keras optimizer ``name`` (``rmsprop``, ``adam``, ``adamw``, ``sgd``) with ``learning_rate``: a
    positive float, or a ``keras.optimizers.schedules.LearningRateSchedule``.

    Args:
        weight_decay: decoupled weight decay (each step ``w -= learning_rate * weight_decay * w``, Keras' rule);
            ``None`` is the optimizer's own default (AdamW 0.004, the others none).

    Raises:
        ImgclfError: an unknown ``name`` or a learning rate that is neither.
    """
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = check_learning_rate(learning_rate)
    decay = {} if weight_decay is None else {"weight_decay": float(weight_decay)}
    return OPTIMIZERS[check_optimizer(name)](learning_rate=learning_rate, **decay)
