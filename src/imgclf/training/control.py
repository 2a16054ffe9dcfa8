"""Training control: small Keras callbacks that each record *why* training stopped, and run checkpoints.

- :class:`TargetAccuracy` — the course's ``myCallback`` (stop once accuracy passes a target, e.g. 0.999 in
  the happy-or-sad exercise);
- :class:`RecordedEarlyStopping` — Keras' ``EarlyStopping`` that says what it did;
- :class:`RunCheckpoint` — after every epoch, ``last.keras`` (model + optimizer state) and ``state.json``
  written atomically, and ``best.keras`` (float32, no optimizer, as ``model.keras``) when the monitored value
  improves: a run killed at any moment can
  be resumed from its last completed epoch.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np

from imgclf._io import atomic_path, remove_stale_temporaries, write_json
from imgclf.errors import ImgclfError
from imgclf.models.precision import inference_model
from imgclf.runs.record import BEST_FILE, STATE_FILE
from imgclf.runs.record import LAST_FILE as LAST_MODEL

BEST_MODEL = BEST_FILE


class TargetAccuracy(keras.callbacks.Callback):
    """Stop once ``monitor`` reaches ``target`` at the end of an epoch.

    Source: the course's ``myCallback`` (``if logs.get('accuracy') > 0.999: self.model.stop_training = True``).

    Args:
        target: the value to reach, e.g. 0.999.
        monitor: ``"accuracy"`` (training, as in the course) or ``"val_accuracy"``.

    Attributes:
        reason: why it stopped training, or ``None``.
    """

    def __init__(self, target: float, monitor: str = "accuracy"):
        super().__init__()
        self.target, self.monitor, self.reason = target, monitor, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and value >= self.target:
            self.model.stop_training = True
            self.reason = f"{self.monitor} {value:.4f} reached the target {self.target} at epoch {epoch + 1}"


class RecordedEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' ``EarlyStopping`` that records why it stopped in ``reason``."""

    reason = None

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.stopped_epoch > 0:
            best = f"{self.best:.4f}" if self.best is not None and math.isfinite(self.best) else "?"
            self.reason = (
                f"early stopping at epoch {self.stopped_epoch + 1}: {self.monitor} did not improve for "
                f"{self.patience} epochs (best {best})"
            )


class RunCheckpoint(keras.callbacks.Callback):
    """Save ``last.keras`` + ``state.json`` after every epoch, ``best.keras`` when ``monitor`` improves.

    Every file is written atomically (temp file + rename), so a kill at any moment leaves the previous
    complete files. With ``min_interval``, epochs that end sooner than that after the last save are not saved
    (a head on cached features runs an epoch in a tenth of a second; saving the whole model twice took longer):
    the best epoch's weights wait in memory, and everything is written when training ends; ``state.json`` always
    describes the files on disk, so a kill or Ctrl-C costs at most ``min_interval`` seconds of epochs, which
    ``--resume`` trains again.

    Args:
        run: the run folder.
        epochs: the number of epochs asked for.
        monitor: the value whose minimum (``*loss``) or maximum (otherwise) makes the best model.
        state: the state to continue from (``state.json`` of a resumed run), or ``None``.
        save_model: the model to save, when it is not the one being trained (a head on cached features).
        min_interval: seconds between saves (0: every epoch).
    """

    def __init__(self, run: str | Path, epochs: int, monitor: str = "val_loss", state: dict | None = None,
                 save_model: keras.Model | None = None, min_interval: float = 0.0):  # fmt: skip
        super().__init__()
        self.run, self.monitor, self.save_model = Path(run), monitor, save_model
        for name in (LAST_MODEL, BEST_MODEL, STATE_FILE):  # a kill -9 mid-write leaves a temporary file behind
            remove_stale_temporaries(self.run, name)
        self.state = state or {"epochs": epochs, "epochs_completed": 0, "status": "running", "best": None}
        self.state["epochs"] = epochs
        self.state["status"] = "running"
        self._better = (lambda a, b: a < b) if "loss" in monitor else (lambda a, b: a > b)
        self.min_interval, self._saved_at = float(min_interval), time.monotonic()
        self._done, self._best = None, None  # epochs done and best (weights, record) not yet on disk

    def _write_state(self):
        write_json(self.run / STATE_FILE, self.state)

    def on_train_begin(self, logs=None):
        self._saved_at = time.monotonic()
        self._write_state()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        model = self.save_model or self.model  # the full model, when only its head is being trained
        value = logs.get(self.monitor)
        best = (self._best or (None, self.state.get("best")))[1]
        if value is not None and (best is None or self._better(value, best["value"])):
            self._best = (model.get_weights(), {"monitor": self.monitor, "value": float(value), "epoch": epoch + 1})
        self._done = epoch + 1
        if time.monotonic() - self._saved_at >= self.min_interval:
            self._save(model)

    def on_train_end(self, logs=None):
        if self._done is not None:
            self._save(self.save_model or self.model)

    def _save(self, model) -> None:
        with atomic_path(self.run / LAST_MODEL) as tmp:
            model.save(tmp)
        if self._best is not None:
            weights, record = self._best
            current = model.get_weights() if record["epoch"] != self._done else None
            if current is not None:
                model.set_weights(weights)
            with atomic_path(self.run / BEST_MODEL) as tmp:
                inference_model(model).save(tmp)  # portable: float32, no optimizer, like model.keras
            if current is not None:
                model.set_weights(current)
            self.state["best"] = record
        self.state["epochs_completed"] = self._done
        self._done, self._best, self._saved_at = None, None, time.monotonic()
        self._write_state()

    def interrupted(self) -> None:
        """Record that training was interrupted (Ctrl-C): ``"status": "interrupted"``, resumable."""
        self.state["status"] = "interrupted"
        self._write_state()

    def finish(self, reason: str | None) -> None:
        """Record the end of training: ``finished`` (all epochs) or ``stopped`` with ``reason``."""
        self.state["status"] = "stopped" if reason else "finished"
        self.state["stop_reason"] = reason
        self._write_state()


def class_weights(setting, labels: np.ndarray, num_classes: int) -> dict[int, float] | None:
    """Class weights for ``model.fit``: ``None``, ``"balanced"`` (scikit-learn's
    ``compute_class_weight``: n_samples / (n_classes * count)) or an explicit ``{class_index: weight}``.

    Raises:
        ImgclfError: an explicit mapping with a key that is not a class index or a weight that is not positive.
    """
    if setting is None:
        return None
    if setting == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        present = np.unique(labels)
        weights = compute_class_weight("balanced", classes=present, y=labels)
        out = dict.fromkeys(range(num_classes), 1.0)
        out.update({int(c): float(w) for c, w in zip(present, weights)})
        return out
    out = dict.fromkeys(range(num_classes), 1.0)  # a class not named keeps weight 1
    for key, value in dict(setting).items():
        try:
            index, weight = int(key), float(value)
        except (TypeError, ValueError):
            index, weight = -1, float("nan")
        if not 0 <= index < num_classes or not np.isfinite(weight) or weight <= 0 or isinstance(value, bool):
            raise ImgclfError(
                f"class_weight must map class indices (0 to {num_classes - 1}) to positive numbers. "
                f"Received: {setting!r}"
            )
        out[index] = weight
    return out


def control_callbacks(config, has_validation: bool, run: Path | None) -> list:
    """The callbacks a :class:`imgclf.training.trainer.TrainingConfig` asks for (target accuracy, early stopping,
    learning rate, TensorBoard).

    Raises:
        ImgclfError: ``monitor`` is a validation metric and there is no validation data.
    """
    cbs = []
    if config.target_accuracy is not None:
        if config.monitor.startswith("val_") and not has_validation:
            raise ImgclfError(f"monitor={config.monitor!r} needs validation data; this dataset has none.")
        cbs.append(TargetAccuracy(config.target_accuracy, config.monitor))
    watch = "val_loss" if has_validation else "loss"
    if config.early_stopping is not None:
        cbs.append(RecordedEarlyStopping(monitor=watch, patience=config.early_stopping, restore_best_weights=False))
    if config.reduce_lr is not None:
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=watch, factor=0.2, patience=config.reduce_lr, min_lr=1e-7))
    if config.tensorboard and run is not None:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(run / "tensorboard")))
    return cbs
