"""The training loop behind ``ImageClassifier.fit`` and ``imgclf train --resume``.

It assembles the callbacks (timing, history, skipped files, progress, the training-control options of the
classifier, run checkpoints), runs ``model.fit`` from ``initial_epoch``, and writes the run folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import keras
import numpy as np

from imgclf import _io
from imgclf.errors import ImgclfError
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.training import control
from imgclf.training import run as runfiles
from imgclf.training.callbacks import EpochTimer, HistoryRecorder, RichProgress, SkippedFilesReporter
from imgclf.training.plots import plot_history


def class_weights(setting, labels: np.ndarray, num_classes: int) -> dict[int, float] | None:
    """Class weights for ``model.fit``: ``None``, ``"balanced"`` (scikit-learn's
    ``compute_class_weight``: n_samples / (n_classes * count)) or an explicit ``{class_index: weight}``."""
    if setting is None:
        return None
    if setting == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        present = np.unique(labels)
        weights = compute_class_weight("balanced", classes=present, y=labels)
        out = dict.fromkeys(range(num_classes), 1.0)
        out.update({int(c): float(w) for c, w in zip(present, weights)})
        return out
    return {int(k): float(v) for k, v in dict(setting).items()}


def control_callbacks(clf, has_validation: bool, run: Path | None) -> list:
    """The callbacks the classifier's settings ask for (target accuracy, early stopping, LR, TensorBoard)."""
    cbs = []
    if clf.target_accuracy is not None:
        if clf.monitor.startswith("val_") and not has_validation:
            raise ImgclfError(f"monitor={clf.monitor!r} needs validation data; this dataset has none.")
        cbs.append(control.TargetAccuracy(clf.target_accuracy, clf.monitor))
    watch = "val_loss" if has_validation else "loss"
    if clf.early_stopping is not None:
        cbs.append(
            control.RecordedEarlyStopping(monitor=watch, patience=clf.early_stopping, restore_best_weights=False)
        )
    if clf.reduce_lr is not None:
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=watch, factor=0.2, patience=clf.reduce_lr, min_lr=1e-7))
    if clf.tensorboard and run is not None:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(run / "tensorboard")))
    return cbs


def train(clf, dataset, model, run: Path | None, *, callbacks=(), verbose: int = 1, initial_epoch: int = 0,
          history: list[dict] | None = None, state: dict | None = None) -> None:  # fmt: skip
    """Fit ``model`` on ``dataset`` for ``clf``'s settings and record everything in ``run``.

    Sets ``clf.history_``, ``clf.skipped_`` and ``clf.stop_reason_``.
    """
    clf.skipped_ = SkippedFiles()
    train_ds, val_ds = clf.training_datasets(dataset, clf.skipped_)
    recorder = HistoryRecorder(run / runfiles.HISTORY_FILE if run is not None else None)
    recorder.rows = list(history or [])
    reporter = SkippedFilesReporter(clf.skipped_, run / runfiles.SKIPPED_FILE if run is not None else None, verbose)
    controls = control_callbacks(clf, val_ds is not None, run)
    checkpoint = None
    if run is not None:
        checkpoint = control.RunCheckpoint(run, clf.epochs, "val_loss" if val_ds is not None else "loss", state)
    cbs = [EpochTimer(), recorder, reporter, *controls, *([checkpoint] if checkpoint else []),
           *([RichProgress()] if verbose else []), *callbacks]  # fmt: skip
    weights = class_weights(clf.class_weight, dataset.train.labels, dataset.num_classes)
    with warnings.catch_warnings():
        # Unreadable files are filtered out inside the pipeline, so the first epoch's length is only
        # known at its end; Keras warns that the data "ran out", which here is expected.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(train_ds, validation_data=val_ds, epochs=clf.epochs, initial_epoch=initial_epoch, callbacks=cbs,
                  verbose=0, shuffle=False, class_weight=weights)  # fmt: skip
    clf.history_ = recorder.rows
    clf.stop_reason_ = next((c.reason for c in controls if getattr(c, "reason", None)), None)
    if run is not None:
        from imgclf.classifier import model_summary

        clf.save(run)
        _io.write_text(run / runfiles.SUMMARY_FILE, model_summary(model))
        plot_history(clf.history_, run / runfiles.PLOTS_DIR)
        checkpoint.finish(clf.stop_reason_)


def resume(run_dir, verbose: int = 1):
    """Continue a run from its last completed epoch (after a crash, a kill or Ctrl-C).

    Reads ``config.yaml``, the dataset it names, ``last.keras`` (weights *and* optimizer state) and
    ``state.json``; the history keeps every finished epoch once.

    Returns:
        The fitted :class:`~imgclf.ImageClassifier`.

    Raises:
        ImgclfError: not a resumable run (no ``last.keras`` / ``state.json``), already finished, or its
            dataset is gone.
    """
    from imgclf.classifier import ImageClassifier
    from imgclf.data.folders import load_folder
    from imgclf.pipeline.dataset import resolve_class_mode
    from imgclf.training.callbacks import read_history_csv

    run = Path(run_dir)
    state = control.read_state(run)
    if state is None or not (run / control.LAST_MODEL).is_file() or not (run / runfiles.CONFIG_FILE).is_file():
        raise ImgclfError(
            "RUN must be a run folder that has finished at least one epoch (state.json, last.keras). "
            f"Received: {str(run_dir)!r}"
        )
    if state.get("status") in ("finished", "stopped"):
        raise ImgclfError(f"run {str(run_dir)!r} has already {state['status']}: nothing to resume.")
    config = _io.read_yaml(run / runfiles.CONFIG_FILE)
    allowed = list(ImageClassifier().get_params())
    clf = ImageClassifier(**{k: (tuple(v) if k == "target_size" else v) for k, v in config.items() if k in allowed})
    data = (config.get("data") or {}).get("path")
    if not data or not Path(data).exists():
        raise ImgclfError(f"the dataset of run {str(run_dir)!r} is gone. Received: {data!r}")
    dataset = load_folder(data, clf.validation_split, clf.seed)
    clf.classes_, clf.dataset_ = dataset.class_names, dataset
    clf.class_mode_ = resolve_class_mode(clf.class_mode, dataset.num_classes)
    clf.model_ = keras.saving.load_model(run / control.LAST_MODEL)
    done = int(state["epochs_completed"])
    history_path = run / runfiles.HISTORY_FILE
    history = [r for r in read_history_csv(history_path) if r["epoch"] <= done] if history_path.is_file() else []
    keras.utils.set_random_seed(clf.seed + done)  # a fresh, reproducible stream for the remaining epochs
    train(clf, dataset, clf.model_, run, verbose=verbose, initial_epoch=done, history=history, state=state)
    return clf
