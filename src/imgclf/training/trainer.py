"""The training loop: a model, its datasets and a :class:`TrainingConfig` in, a :class:`TrainingResult` out.

It assembles the callbacks (timing, history, skipped files, progress, target accuracy / early stopping / learning
rate control, run checkpoints), trains the head on cached backbone features when the backbone is frozen and nothing
is augmented, runs the optional fine-tuning phase, and keeps the run's per-epoch files (``history.csv``, ``last.keras``,
``best.keras``, ``state.json``), then ``summary.txt`` and the curves. :mod:`imgclf.training.fit` calls it.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from imgclf import _io
from imgclf.features.extract import cached_features, check_finite, feature_dataset
from imgclf.features.prototypes import set_prototypes
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.runs import record as runfiles
from imgclf.training import control
from imgclf.training.callbacks import (
    EpochTimer,
    HistoryRecorder,
    NothingReadableGuard,
    RichProgress,
    SkippedFilesReporter,
)
from imgclf.training.control import class_weights, control_callbacks
from imgclf.training.distributed.runner import Runner
from imgclf.training.optimizers import learning_rate_schedule, make_optimizer
from imgclf.training.plots import plot_history
from imgclf.training.summary import model_summary

#: Loss of each class mode (Keras classes).
LOSSES = {
    "binary": keras.losses.BinaryCrossentropy,
    "categorical": keras.losses.CategoricalCrossentropy,
    "sparse": keras.losses.SparseCategoricalCrossentropy,
}


#: Training steps of a head on cached features run in one call (Keras' ``steps_per_execution``): the same steps,
#: without a Python round trip each (SqueezeNet's 512 pooled features: an epoch of 2,000 images 0.45 s → see bench).
HEAD_STEPS = 32
#: Seconds between checkpoints of a head on cached features (:class:`imgclf.training.control.RunCheckpoint`).
CHECKPOINT_SECONDS = 5.0


def make_loss(class_mode: str, label_smoothing: float = 0.0) -> keras.losses.Loss:
    """The class mode's crossentropy; ``label_smoothing`` (binary, categorical) mixes that much of the uniform
    distribution into the targets (Szegedy et al. 2016; Keras' ``label_smoothing``)."""
    if class_mode == "sparse" or not label_smoothing:
        return LOSSES[class_mode]()
    return LOSSES[class_mode](label_smoothing=float(label_smoothing))


@dataclass(frozen=True)
class TrainingConfig:
    """Resolved training settings (checked values, no ``None`` where a default applies).

    Attributes:
        epochs: epochs of the first (or only) phase.
        batch_size: images per batch.
        optimizer, learning_rate, weight_decay: see :func:`imgclf.training.optimizers.make_optimizer`.
        lr_schedule, warmup_epochs: see :func:`imgclf.training.optimizers.learning_rate_schedule`.
        label_smoothing: see :func:`make_loss`.
        class_mode: ``binary``, ``categorical`` or ``sparse``.
        target_accuracy, monitor, early_stopping, reduce_lr, class_weight, tensorboard: training control.
        fine_tune, fine_tune_from: layers unfrozen in a second phase (``None``: no fine-tuning).
        fine_tune_epochs: epochs of that phase.
        fine_tune_schedule: ``cosine`` or ``constant``.
        cache_features: train the head on cached backbone features (frozen backbone, no augmentation).
        feature_key: disk-cache key of those features (``None``: compute them, keep nothing).
        prototypes: the few-shot head: its weights are the class prototypes (:mod:`imgclf.features.prototypes`).
        seed: seed of the feature batches' shuffle.
    """

    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    class_mode: str
    weight_decay: float | None = None
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    target_accuracy: float | None = None
    monitor: str = "accuracy"
    early_stopping: int | None = None
    reduce_lr: int | None = None
    class_weight: str | dict | None = None
    tensorboard: bool = False
    fine_tune: int | None = None
    fine_tune_from: str | None = None
    fine_tune_epochs: int | None = None
    fine_tune_schedule: str = "cosine"
    cache_features: bool = False
    feature_key: str | None = None
    seed: int = 0
    prototypes: bool = False

    @classmethod
    def of(cls, resolved, class_mode: str, **kwargs) -> TrainingConfig:
        """The config of the resolved settings (:class:`imgclf.settings.resolved.Resolved`), taken by name, with the
        dataset's ``class_mode``; ``kwargs`` set the rest (``cache_features``, ``feature_key``)."""
        taken = {f.name: getattr(resolved, f.name) for f in dataclasses.fields(cls) if hasattr(resolved, f.name)}
        return cls(**{**taken, "class_mode": class_mode, "prototypes": resolved.head == "prototypes", **kwargs})

    @property
    def fine_tuning(self) -> bool:
        return self.fine_tune is not None or self.fine_tune_from is not None

    def first_learning_rate(self, num_train: int):
        """The first phase's learning rate for ``num_train`` training images: a float, or a schedule over its
        steps (:func:`imgclf.training.optimizers.learning_rate_schedule`)."""
        steps = -(-max(num_train, 1) // self.batch_size)
        return learning_rate_schedule(self.learning_rate, self.lr_schedule, self.epochs * steps,
                                      round(self.warmup_epochs * steps))  # fmt: skip

    @property
    def total_epochs(self) -> int:
        """Epochs of both phases."""
        return self.epochs + ((self.fine_tune_epochs or self.epochs) if self.fine_tuning else 0)


@dataclass
class TrainingData:
    """What the trainer trains on.

    Attributes:
        train: shuffled (and augmented) ``(images, targets)`` batches; images uint8 ``(batch, h, w, c)``.
        validation: validation batches, or ``None``.
        train_in_order: the training images once, unshuffled and unaugmented (for cached features).
        labels: training labels, int ``(n,)`` (class weights, step counts).
        num_classes: number of classes.
        skipped: where the pipeline records files it cannot decode.
        by_image: the images' features one by one (:class:`~imgclf.features.store.ImageFeatures`), so
            that cached features cover the images already seen by another run; ``None`` for pixels or packed data.
        class_names: the classes' names in output order (errors name a class, never its index).
    """

    train: object
    validation: object | None
    train_in_order: object
    labels: np.ndarray
    num_classes: int
    skipped: SkippedFiles = field(default_factory=SkippedFiles)
    by_image: object | None = None
    class_names: tuple = ()


@dataclass
class TrainingResult:
    """What training did.

    Attributes:
        model: the trained model (the one passed in, trained in place).
        history: one dict per epoch (``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
            ``learning_rate``, ``seconds``).
        stop_reason: why training stopped before its last epoch, or ``None``.
        fine_tune_start: first epoch (1-based) of the fine-tuning phase, or ``None``.
        skipped: files that could not be read.
        features_from_cache: the backbone features came from the disk cache.
        features: with cached features, ``((f_train, y_train), (f_val, y_val) or None)``: what the head read
            (:func:`imgclf.models.transfer.split_at_features` with ``pooled``), for calibration and evaluation
            without a second pass over the images; else ``None``.
    """

    model: keras.Model
    history: list[dict]
    stop_reason: str | None
    fine_tune_start: int | None
    skipped: SkippedFiles
    features_from_cache: bool = False
    features: tuple | None = None


def compile_model(model: keras.Model, config: TrainingConfig, learning_rate) -> keras.Model:
    """Compile ``model`` with ``config``'s optimizer and weight decay
    (:func:`imgclf.training.optimizers.make_optimizer`) at ``learning_rate`` (a float or a schedule), its class
    mode's loss with its label smoothing (:func:`make_loss`) and accuracy. Returns ``model``."""
    model.compile(optimizer=make_optimizer(config.optimizer, learning_rate, config.weight_decay),
                  loss=make_loss(config.class_mode, config.label_smoothing), metrics=["accuracy"])  # fmt: skip
    return model


def fine_tune_learning_rate(config: TrainingConfig, steps: int):
    """The fine-tuning phase's learning rate: a tenth of ``learning_rate`` (the course's and Keras'
    transfer-learning guide's advice: small steps, so the pretrained weights are adjusted, not wrecked),
    annealed to 0 over ``steps`` optimizer steps along a half cosine (SGDR, Loshchilov & Hutter 2017; the
    annealing half of fastai's one-cycle ``fine_tune``), so the last epochs settle instead of wandering. A
    constant rate with ``fine_tune_schedule="constant"``, or when ``reduce_lr`` is set, because
    ReduceLROnPlateau needs a rate it can change.

    Returns:
        A float, or a ``keras.optimizers.schedules.CosineDecay``.
    """
    rate = config.learning_rate / 10
    if config.reduce_lr or config.fine_tune_schedule == "constant":
        return rate
    return keras.optimizers.schedules.CosineDecay(rate, decay_steps=max(1, steps), alpha=0.0)


def _start_fine_tuning(config: TrainingConfig, model, num_train: int, epochs: int, verbose: int,
                       runner: Runner) -> None:
    """Unfreeze the top of the backbone and recompile ``model`` for ``epochs`` epochs of fine-tuning."""
    from imgclf.models.transfer import unfreeze_top

    opened = unfreeze_top(model, config.fine_tune, config.fine_tune_from)
    steps = epochs * -(-num_train // config.batch_size)
    rate = fine_tune_learning_rate(config, steps)
    with runner.scope():
        compile_model(model, config, rate)
    if verbose:
        from imgclf._console import console

        how = "constant" if isinstance(rate, float) else "cosine-annealed to 0"
        console().print(
            f"Fine-tuning {len(opened)} backbone layers at learning rate {config.learning_rate / 10:g} ({how}) ..."
        )


def _head_on_features(model, data: TrainingData, config: TrainingConfig, verbose: int):
    """``(head, train, validation, from_cache, features)``: the head of a transfer model, its feature datasets, and
    the features themselves."""
    from imgclf.models.transfer import split_at_features

    extractor, head = split_at_features(model, pooled=True)

    def announce(new: int | None = None, total: int | None = None):
        if verbose:
            from imgclf._console import console

            what = "the images" if new is None or new == total else f"{new:,} new images ({total - new:,} stored)"
            console().print(f"Running the frozen backbone once over {what} (cached features) ...")

    (f_train, y_train), val, from_cache = cached_features(
        config.feature_key, extractor, data.train_in_order, data.validation, data.skipped, announce, data.by_image
    )
    known = data.by_image if data.by_image is not None and not len(data.skipped) else None  # paths in row order
    check_finite(f_train, known.train.paths if known else None, "training")
    if val is not None:
        check_finite(val[0], known.validation.paths if known and known.validation else None, "validation")
    if config.prototypes:  # the few-shot head: class means, then one epoch that only measures
        counts = set_prototypes(head, f_train, y_train, config.class_mode, data.num_classes,
                                class_names=data.class_names or None)
        if verbose:
            from imgclf._console import console

            console().print(f"Prototypes from {int(counts.sum())} images ({int(counts.min())} to "
                                       f"{int(counts.max())} a class); no gradient training.")  # fmt: skip
    train = feature_dataset(f_train, y_train, config.batch_size, True, config.seed)
    validation = feature_dataset(*val, config.batch_size, False, config.seed) if val is not None else None
    # many small steps a call: the per-step dispatch, not the arithmetic, is what a head on features costs
    head.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], steps_per_execution=HEAD_STEPS)
    return head, train, validation, from_cache, ((f_train, y_train), val)


def train(model: keras.Model, data: TrainingData, config: TrainingConfig, run: Path | None = None, *,
          callbacks=(), verbose: int = 1, initial_epoch: int = 0, history: list[dict] | None = None,
          state: dict | None = None, runner: Runner | None = None, restored: bool = True,
          restore_from=None) -> TrainingResult:  # fmt: skip
    """Train a compiled ``model`` and record everything in ``run``.

    With ``config.cache_features`` the head is trained on cached backbone outputs (the model is still the
    whole backbone + head). With fine-tuning a second phase then unfreezes the top of the backbone and trains
    on at a tenth of the learning rate; the history runs on.

    Args:
        model: a compiled Keras model taking uint8 images.
        data: the datasets.
        config: the resolved settings.
        run: the run folder for per-epoch files, or ``None``.
        callbacks: extra ``keras.callbacks.Callback`` objects.
        verbose: 1 prints a Rich progress bar per epoch on stderr; 0 is silent.
        initial_epoch: where a resumed run starts: the epochs done.
        history: their history rows.
        state: the run's ``state.json``.
        restored: with ``initial_epoch``, ``model`` is the checkpoint's (fine-tuning layers and optimizer included);
            else it is new (a worker other than the chief, which gets the chief's values) and a run resumed inside
            the fine-tuning phase first opens that phase's layers and optimizer again.
        restore_from: with a distributed ``runner``, a model loaded from ``last.keras`` whose weights and optimizer
            state ``model`` takes when training starts (:func:`imgclf.training.distributed.steps.fit`).
        runner: where training runs (:class:`~imgclf.training.distributed.runner.Runner`; default: this process
            alone). A distributed one's scope ``model`` was made in, and ``data`` made by its ``datasets``;
            training then runs its ``fit`` (no cached features); the fine-tuning phase's optimizer is made in its
            scope.

    Returns:
        A :class:`TrainingResult`.

    Raises:
        ImgclfError: a setting that needs validation data without any.
    """
    runner = Runner() if runner is None else runner
    recorder = HistoryRecorder(run / runfiles.HISTORY_FILE if run is not None else None)
    recorder.rows = list(history or [])
    reporter = SkippedFilesReporter(data.skipped, run / runfiles.SKIPPED_FILE if run is not None else None, verbose)
    controls = control_callbacks(config, data.validation is not None, run)
    monitor = "val_loss" if data.validation is not None else "loss"
    phase_one_done = initial_epoch >= config.epochs
    quick = config.cache_features and not phase_one_done and not runner.distributed  # sub-second epochs: save less
    checkpoint = (
        control.RunCheckpoint(run, config.epochs, monitor, state, save_model=model,
                              min_interval=CHECKPOINT_SECONDS if quick else 0.0) if run is not None else None
    )  # fmt: skip
    weights = class_weights(config.class_weight, data.labels, data.num_classes)
    fit_model, fit_train, fit_val, from_cache, features = model, data.train, data.validation, False, None
    if quick:
        fit_model, fit_train, fit_val, from_cache, features = _head_on_features(model, data, config, verbose)

    pending = [restore_from] if restore_from is not None else []  # taken by the first phase that trains
    guard = NothingReadableGuard(data.skipped, len(data.labels))

    def run_fit(fit, trn, val, start, stop):
        cbs = [EpochTimer(), recorder, reporter, guard, *controls, *([checkpoint] if checkpoint else []),
               *([RichProgress()] if verbose else []), *callbacks]  # fmt: skip
        with warnings.catch_warnings():
            # Unreadable files are filtered out inside the pipeline, so the first epoch's length is only
            # known at its end; Keras warns that the data "ran out", which here is expected.
            warnings.filterwarnings("ignore", message="(Your input ran out of data|The model does not have any train)")
            if runner.distributed:
                runner.fit(fit, trn, val, epochs=stop, initial_epoch=start, callbacks=cbs, class_weight=weights,
                           checkpoint=pending.pop() if pending else None)  # fmt: skip
            else:
                fit.fit(trn, validation_data=val, epochs=stop, initial_epoch=start, callbacks=cbs, verbose=0,
                        shuffle=False, class_weight=weights)  # fmt: skip

    def run_fit_recorded(*args):
        try:
            run_fit(*args)
        except KeyboardInterrupt:  # Ctrl-C: the run folder says so, and --resume continues it
            if checkpoint is not None:
                checkpoint.interrupted()
            raise

    def reason():
        return next((c.reason for c in controls if getattr(c, "reason", None)), None)

    if not phase_one_done:
        run_fit_recorded(fit_model, fit_train, fit_val, initial_epoch, config.epochs)
    stop_reason, fine_tune_start = reason(), None
    if config.fine_tuning and not stop_reason:
        start = max(len(recorder.rows), config.epochs)
        fine_tune_start = (state or {}).get("fine_tune_from_epoch") or start + 1
        if initial_epoch < fine_tune_start or not restored:
            _start_fine_tuning(config, model, len(data.labels), config.total_epochs - config.epochs, verbose, runner)
        # else: resumed inside the fine-tuning phase; last.keras holds the unfrozen layers and the optimizer
        # with its schedule and step count, so the phase goes on where it stopped.
        if checkpoint is not None:
            checkpoint.state["epochs"] = config.total_epochs
            checkpoint.state["fine_tune_from_epoch"] = fine_tune_start
        for c in controls:  # a fresh start for patience counters in the new phase
            if hasattr(c, "wait"):
                c.wait = 0
        run_fit_recorded(model, data.train, data.validation, start, config.total_epochs)
        stop_reason = reason()
    if run is not None:
        _io.write_text(run / runfiles.SUMMARY_FILE, model_summary(model))
        plot_history(recorder.rows, run / runfiles.PLOTS_DIR, fine_tune_start)
        checkpoint.finish(stop_reason)
    features = None if config.fine_tuning else features  # fine-tuning changed the backbone: they are stale
    return TrainingResult(model, recorder.rows, stop_reason, fine_tune_start, data.skipped, from_cache, features)
