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


def extract_features(extractor: keras.Model, ds) -> tuple[np.ndarray, np.ndarray]:
    """Run ``extractor`` once over a labelled image dataset: ``(features float32, targets)``, in order."""
    feats, targets = [], []
    for images, y in ds:
        feats.append(np.asarray(extractor(images, training=False), dtype=np.float32))
        targets.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(targets)


def feature_cache_key(clf, model, dataset) -> str:
    """A key for a dataset's backbone features: the file contents (SHA-256), the backbone and its weights,
    the input size and preprocessing, and the cut layer — any change gives a new key."""
    import hashlib
    import json

    digest = hashlib.sha256()
    head_input = next(layer for layer in model.layers if layer.name.startswith("head_")).input
    weights = Path(clf.weights) if clf.weights not in (None, "imagenet") else None
    digest.update(json.dumps([clf.backbone, clf.weights if weights is None else sha_file(weights),
                              list(clf.input_shape), clf.interpolation, clf.cut_layer,
                              str(head_input.shape), clf.class_mode_]).encode())  # fmt: skip
    for samples in (dataset.train, dataset.validation):
        if samples is None:
            digest.update(b"-")
            continue
        digest.update(np.asarray(samples.labels).tobytes())
        if samples.images is not None:
            digest.update(samples.images.tobytes())
        else:
            for path in samples.paths:
                digest.update(sha_file(path).encode())
    return digest.hexdigest()[:32]


def sha_file(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cached_features(clf, model, dataset, extractor, val_ds, verbose: int):
    """Backbone outputs of the training and validation images: from the disk cache
    (``<imgclf home>/features/<key>.npz``) or computed once and stored there.

    Returns:
        ``(f_train, y_train, f_val, y_val)``; the validation pair is ``None`` without validation data.
    """
    from imgclf.data.cache import imgclf_home

    key = feature_cache_key(clf, model, dataset)
    path = imgclf_home() / "features" / f"{key}.npz"
    clf.features_from_cache_ = path.is_file()
    if path.is_file():
        with np.load(path) as z:
            return (
                z["f_train"],
                z["y_train"],
                (z["f_val"] if "f_val" in z else None),
                (z["y_val"] if "y_val" in z else None),
            )
    if verbose:
        from rich.console import Console

        Console(stderr=True).print("Running the frozen backbone once over the images (cached features) ...")
    plain_train, _ = clf.training_datasets(dataset, clf.skipped_, shuffle=False)  # each image once, in order
    f_train, y_train = extract_features(extractor, plain_train)
    f_val, y_val = extract_features(extractor, val_ds) if val_ds is not None else (None, None)
    if not len(clf.skipped_):  # never cache a set with unreadable files: fixing them must change the result
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"f_train": f_train, "y_train": y_train}
        if f_val is not None:
            arrays |= {"f_val": f_val, "y_val": y_val}
        with _io.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    return f_train, y_train, f_val, y_val


def _feature_dataset(features, targets, batch_size: int, shuffle: bool, seed: int):
    import tensorflow as tf

    from imgclf.pipeline.dataset import finish

    ds = tf.data.Dataset.from_tensor_slices((features, targets))
    if shuffle:
        ds = ds.shuffle(len(features), seed=seed, reshuffle_each_iteration=True)
    return finish(ds.batch(batch_size))


def uses_cached_features(clf) -> bool:
    """True when the backbone stays frozen during the epochs and nothing is augmented: then the backbone
    runs once over the data, and the epochs train the head on its stored outputs."""
    return bool(clf.backbone) and clf.cache_features and clf.augment.is_identity


def fine_tune_learning_rate(clf, steps: int):
    """The fine-tuning phase's learning rate: a tenth of ``clf.learning_rate`` (the course's and Keras'
    transfer-learning guide's advice: small steps, so the pretrained weights are adjusted, not wrecked),
    annealed to 0 over ``steps`` optimizer steps along a half cosine (SGDR, Loshchilov & Hutter 2017; the
    annealing half of fastai's one-cycle ``fine_tune``), so the last epochs settle instead of wandering. A
    constant rate with ``fine_tune_schedule="constant"``, or when ``clf.reduce_lr`` is set, because
    ReduceLROnPlateau needs a rate it can change.

    Returns:
        A float, or a ``keras.optimizers.schedules.CosineDecay``.
    """
    rate = clf.learning_rate / 10
    if clf.reduce_lr or clf.fine_tune_schedule == "constant":
        return rate
    return keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, steps), alpha=0.0)


def _start_fine_tuning(clf, model, num_train: int, epochs: int, verbose: int) -> None:
    """Unfreeze the top of the backbone and recompile ``model`` for ``epochs`` epochs of fine-tuning."""
    from imgclf.models.transfer import unfreeze_top
    from imgclf.training.optimizers import make_optimizer

    opened = unfreeze_top(model, clf.fine_tune, clf.fine_tune_from)
    steps = epochs * -(-num_train // clf.batch_size)
    rate = fine_tune_learning_rate(clf, steps)
    model.compile(optimizer=make_optimizer(clf.optimizer, rate), loss=model.loss, metrics=["accuracy"])
    if verbose:
        from rich.console import Console

        how = "constant" if isinstance(rate, float) else "cosine-annealed to 0"
        Console(stderr=True).print(
            f"Fine-tuning {len(opened)} backbone layers at learning rate {clf.learning_rate / 10:g} ({how}) ..."
        )


def train(clf, dataset, model, run: Path | None, *, callbacks=(), verbose: int = 1, initial_epoch: int = 0,
          history: list[dict] | None = None, state: dict | None = None) -> None:  # fmt: skip
    """Fit ``model`` on ``dataset`` for ``clf``'s settings and record everything in ``run``.

    With a frozen backbone and no augmentation the head is trained on cached backbone outputs (the saved
    model is still the whole backbone + head). With ``fine_tune`` / ``fine_tune_from`` a second phase then
    unfreezes the top of the backbone and trains on at a tenth of the learning rate; the history runs on.

    Sets ``clf.history_``, ``clf.skipped_``, ``clf.stop_reason_`` and ``clf.fine_tune_start_``.
    """
    clf.skipped_ = SkippedFiles()
    train_ds, val_ds = clf.training_datasets(dataset, clf.skipped_)
    recorder = HistoryRecorder(run / runfiles.HISTORY_FILE if run is not None else None)
    recorder.rows = list(history or [])
    reporter = SkippedFilesReporter(clf.skipped_, run / runfiles.SKIPPED_FILE if run is not None else None, verbose)
    controls = control_callbacks(clf, val_ds is not None, run)
    monitor = "val_loss" if val_ds is not None else "loss"
    checkpoint = control.RunCheckpoint(run, clf.epochs, monitor, state, save_model=model) if run is not None else None
    weights = class_weights(clf.class_weight, dataset.train.labels, dataset.num_classes)
    fit_model, fit_train, fit_val = model, train_ds, val_ds
    fine_tuning = clf.fine_tune is not None or clf.fine_tune_from is not None
    phase_one_done = initial_epoch >= clf.epochs
    if uses_cached_features(clf) and not phase_one_done:
        from imgclf.models.transfer import split_at_features

        extractor, head = split_at_features(model)
        f_train, y_train, f_val, y_val = cached_features(clf, model, dataset, extractor, val_ds, verbose)
        fit_train = _feature_dataset(f_train, y_train, clf.batch_size, True, clf.seed)
        if f_val is not None:
            fit_val = _feature_dataset(f_val, y_val, clf.batch_size, False, clf.seed)
        head.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
        fit_model = head

    def run_fit(fit, trn, val, start, stop):
        cbs = [EpochTimer(), recorder, reporter, *controls, *([checkpoint] if checkpoint else []),
               *([RichProgress()] if verbose else []), *callbacks]  # fmt: skip
        with warnings.catch_warnings():
            # Unreadable files are filtered out inside the pipeline, so the first epoch's length is only
            # known at its end; Keras warns that the data "ran out", which here is expected.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            fit.fit(trn, validation_data=val, epochs=stop, initial_epoch=start, callbacks=cbs, verbose=0,
                    shuffle=False, class_weight=weights)  # fmt: skip

    if not phase_one_done:
        run_fit(fit_model, fit_train, fit_val, initial_epoch, clf.epochs)
    clf.stop_reason_ = next((c.reason for c in controls if getattr(c, "reason", None)), None)
    clf.fine_tune_start_ = None
    if fine_tuning and not clf.stop_reason_:
        start = max(len(recorder.rows), clf.epochs)
        clf.fine_tune_start_ = (state or {}).get("fine_tune_from_epoch") or start + 1
        total = clf.epochs + (clf.fine_tune_epochs or clf.epochs)
        if initial_epoch < clf.fine_tune_start_:
            _start_fine_tuning(clf, model, len(dataset.train), total - start, verbose)
        # else: resumed inside the fine-tuning phase; last.keras holds the unfrozen layers and the optimizer
        # with its schedule and step count, so the phase goes on where it stopped.
        if checkpoint is not None:
            checkpoint.state["epochs"] = total
            checkpoint.state["fine_tune_from_epoch"] = clf.fine_tune_start_
        for c in controls:  # a fresh start for patience counters in the new phase
            if hasattr(c, "wait"):
                c.wait = 0
        run_fit(model, train_ds, val_ds, start, total)
        clf.stop_reason_ = next((c.reason for c in controls if getattr(c, "reason", None)), None)
    clf.history_ = recorder.rows
    if run is not None:
        from imgclf.classifier import model_summary

        clf.save(run)
        _io.write_text(run / runfiles.SUMMARY_FILE, model_summary(model))
        plot_history(clf.history_, run / runfiles.PLOTS_DIR, clf.fine_tune_start_)
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
