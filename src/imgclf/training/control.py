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
from pathlib import Path

import keras

from imgclf._io import atomic_path, remove_stale_temporaries, write_json
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
    complete files.

    Args:
        run: the run folder.
        epochs: the number of epochs asked for.
        monitor: the value whose minimum (``*loss``) or maximum (otherwise) makes the best model.
        state: the state to continue from (``state.json`` of a resumed run), or ``None``.
        save_model: the model to save, when it is not the one being trained (a head on cached features).
    """

    def __init__(self, run: str | Path, epochs: int, monitor: str = "val_loss", state: dict | None = None,
                 save_model: keras.Model | None = None):  # fmt: skip
        super().__init__()
        self.run, self.monitor, self.save_model = Path(run), monitor, save_model
        for name in (LAST_MODEL, BEST_MODEL, STATE_FILE):  # a kill -9 mid-write leaves a temporary file behind
            remove_stale_temporaries(self.run, name)
        self.state = state or {"epochs": epochs, "epochs_completed": 0, "status": "running", "best": None}
        self.state["epochs"] = epochs
        self.state["status"] = "running"
        self._better = (lambda a, b: a < b) if "loss" in monitor else (lambda a, b: a > b)

    def _write_state(self):
        write_json(self.run / STATE_FILE, self.state)

    def on_train_begin(self, logs=None):
        self._write_state()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        model = self.save_model or self.model  # the full model, when only its head is being trained
        with atomic_path(self.run / LAST_MODEL) as tmp:
            model.save(tmp)
        value = logs.get(self.monitor)
        best = self.state.get("best")
        if value is not None and (best is None or self._better(value, best["value"])):
            with atomic_path(self.run / BEST_MODEL) as tmp:
                inference_model(model).save(tmp)  # portable: float32, no optimizer, like model.keras
            self.state["best"] = {"monitor": self.monitor, "value": float(value), "epoch": epoch + 1}
        self.state["epochs_completed"] = epoch + 1
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
