"""What ``ImageClassifier.fit`` does, as functions: settings and data in, a frozen :class:`FitResult` out.

:func:`fit` trains a new model (or, in a restarted multi-worker cluster, goes on from the chief's checkpoint),
:func:`resume` continues a run folder from its last finished epoch, :func:`lr_find` runs the learning-rate range
test. Each takes the settings (an :class:`imgclf.settings.Settings`, e.g. the estimator itself) and what they
resolved to (:class:`imgclf.settings.resolved.Resolved`); none of them keeps state. The estimator copies a
result's fields into its trailing-underscore attributes (scikit-learn's convention).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from imgclf import settings as _settings
from imgclf.data.images import ImageSpec
from imgclf.data.samples import Dataset, Samples
from imgclf.data.tables import TableColumns
from imgclf.errors import ImgclfError
from imgclf.features.extract import feature_cache_key, file_shas, head_outputs, weights_fingerprint
from imgclf.features.store import ImageFeatures, image_features
from imgclf.models import create_model, inference_model
from imgclf.models.transfer import split_at_features
from imgclf.pipeline.augment import Augmentation
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.tfdata import available_memory, resolve_class_mode
from imgclf.runs import record as runfiles
from imgclf.runs.folder import mark_run
from imgclf.runs.split_file import write_split
from imgclf.settings import LR_FIND_END_LR, LR_FIND_START_LR, LR_FIND_STEPS, Settings
from imgclf.settings.resolved import Resolved
from imgclf.training.budget import check_training_memory
from imgclf.training.distributed.runner import Runner
from imgclf.training.inputs import decoded_cache_dir, load_data, say_cache, training_datasets
from imgclf.training.lr_find import LrFindResult, check_sweep, range_test
from imgclf.training.seeding import seeded
from imgclf.training.trainer import TrainingConfig, TrainingData, compile_model, train
from imgclf.unknown.calibrate import calibrate, calibrate_features, target_labels
from imgclf.unknown.detector import OodDetector
from imgclf.update import parent as update


@dataclass(frozen=True)
class FitResult:
    """What a training run produced.

    Attributes:
        model: the trained model, float32, from uint8 ``(batch, height, width, channels)`` to probabilities
            ``(batch, 1)`` (binary) or ``(batch, n_classes)``; calibrated when ``calibration`` is set.
        classes: class names; output ``i`` is ``classes[i]``.
        class_mode: ``binary``, ``categorical`` or ``sparse``.
        image: how images were read (size, colour mode, resize filter).
        epochs: epochs of the first phase; augment: the augmentation it trained with.
        history: one dict per epoch (``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
            ``learning_rate``, ``seconds``).
        stop_reason: why training stopped before its last epoch, or ``None``.
        skipped: training or validation files that could not be read.
        fine_tune_start: first epoch (1-based) of the fine-tuning phase, or ``None``.
        features_from_cache: the frozen backbone's features came from the disk cache.
        dataset: the data trained on.
        cache: where decoded images were kept, per split (``memory``, ``disk`` or ``none``).
        calibration: the figures of ``calibration.json`` (temperature, ECE before and after), or ``None``.
        ood: the out-of-distribution detector fitted on the training features, or ``None``.
        run: the run folder this process wrote, or ``None`` (none asked for, or a worker other than the chief).
        parent: the run it started from (``from_run``), or ``None``.
        validation_proba: float32 ``(n, len(classes))`` probabilities (calibrated) of ``dataset.validation``'s
            images in order, from the cached backbone features training read (no second pass); ``None`` without
            cached features, with unreadable files, fine-tuning or mixed precision.
    """

    model: keras.Model
    classes: np.ndarray
    class_mode: str
    image: ImageSpec
    epochs: int
    augment: Augmentation
    history: list[dict]
    stop_reason: str | None
    skipped: SkippedFiles
    fine_tune_start: int | None
    features_from_cache: bool
    dataset: Dataset
    cache: dict = field(default_factory=dict)
    calibration: dict | None = None
    ood: OodDetector | None = None
    run: Path | None = None
    parent: str | None = None
    validation_proba: np.ndarray | None = None


def params_of(settings: Settings) -> dict:
    """Every setting's value, by name (what ``get_params`` gives for the estimator)."""
    return {name: getattr(settings, name) for name in _settings.names()}


def run_record(settings: Settings, resolved: Resolved, classes, class_mode: str, dataset: Dataset | None):
    """The :class:`imgclf.runs.record.RunConfig` of a run with these settings (``config.yaml``)."""
    import imgclf

    return runfiles.RunConfig.of(params_of(settings), classes, resolved, class_mode, dataset, imgclf.__version__)


def load(settings: Settings, resolved: Resolved, X, y=None) -> Dataset:
    """The data ``fit`` trains on (:func:`imgclf.training.inputs.load_data`, split as the settings say)."""
    return load_data(X, y, validation_split=resolved.validation_split, seed=settings.seed,
                     label_pattern=settings.label_pattern, label_column=settings.label_column,
                     table=TableColumns.of(settings), group_by=settings.group_by)  # fmt: skip


def fit(settings: Settings, resolved: Resolved, X, y=None, *, run_dir: str | os.PathLike | None = None,
        callbacks=(), verbose: int = 1, from_run: str | os.PathLike | None = None) -> FitResult:  # fmt: skip
    """Train a new model on ``X``/``y`` (as ``ImageClassifier.fit`` takes them), writing the run into ``run_dir``;
    with ``from_run``, start from that run's model (:mod:`imgclf.update.parent`).

    Raises:
        ImgclfError: as ``ImageClassifier.fit``.
    """
    runner = Runner.of(settings.distribute)  # before TensorFlow runs anything: multi-worker needs it
    dataset = load(settings, resolved, X, y)
    parent = None
    if from_run is not None:
        if run_dir is not None and os.path.realpath(run_dir) == os.path.realpath(from_run):
            raise ImgclfError(f"from_run {str(from_run)!r} is run_dir: the run an update starts from is never written "
                              "over; write the update into another folder.")  # fmt: skip
        if runner.distributed:
            raise ImgclfError("--from updates a run on this machine: give no distribute.")
        parent, dataset = update.parent_run(from_run, dataset, resolved)
        settings, resolved = update.annealed(settings, resolved)
    class_mode = resolve_class_mode(settings.class_mode, dataset.num_classes)
    run = runner.own_folder(run_dir)  # None on a worker other than the chief
    if run is not None:
        mark_run(run)  # marked as imgclf's, as imgclf train marks it: --overwrite may replace it later
    record = run_record(settings, resolved, dataset.class_names, class_mode, dataset)
    record.parent = None if parent is None else str(from_run)
    state = runner.restart_state(run, record)
    if state is not None:  # a restarted cluster: on from the chief's last checkpoint (as BackupAndRestore)
        return _continue(settings, resolved, run, dataset, runner, state, verbose)
    if parent is not None:  # every weight comes from the parent: no pretrained file to load first
        model = new_model(settings, dataclasses.replace(resolved, weights=None), dataset, class_mode, runner)
        update.take_weights(model, parent, class_mode)
    else:
        model = new_model(settings, resolved, dataset, class_mode, runner)
    if run is not None:
        record.write(run)
        write_split(run, dataset)
    result = _train(settings, resolved, model, dataset, class_mode, run, callbacks=callbacks, verbose=verbose,
                    runner=runner)  # fmt: skip
    if run is not None:
        update.write_rehearsal(run, dataset, resolved.image, settings.seed)
    return result if parent is None else dataclasses.replace(result, parent=str(from_run))


def resume(settings: Settings, resolved: Resolved, run: Path, state: dict, data, verbose: int = 1) -> FitResult:
    """Continue the run folder ``run`` from ``state`` (its ``state.json``) on ``data`` (the data it names), with the
    settings its ``config.yaml`` records (see :func:`imgclf.runs.record.resumable`)."""
    runner = Runner.of(settings.distribute)
    return _continue(settings, resolved, run, load(settings, resolved, data), runner, state, verbose)


def build_model(settings: Settings, resolved: Resolved, num_classes: int, class_mode: str) -> keras.Model:
    """The uncompiled model the settings describe (:func:`imgclf.models.create_model`)."""
    return create_model(
        resolved.backbone or resolved.model, resolved.input_shape, num_classes, class_mode, resolved.precision,
        pretrained=resolved.weights if resolved.backbone else None, cut_layer=settings.cut_layer, head=resolved.head,
        dropout=resolved.dropout,
    )  # fmt: skip


def new_model(settings: Settings, resolved: Resolved, dataset: Dataset, class_mode: str,
              runner: Runner | None = None):
    """The compiled model to train (in ``runner``'s scope), once the memory it needs is known to be there.

    Raises:
        ImgclfError: not enough memory for these settings (:func:`imgclf.training.budget.check_training_memory`).
    """
    free = available_memory()
    check_training_memory(resolved.input_shape, resolved.batch_size, available=free)  # before allocating
    config = TrainingConfig.of(resolved, class_mode)
    with seeded(settings.seed), (runner or Runner()).scope():
        model = build_model(settings, resolved, dataset.num_classes, class_mode)
        compile_model(model, config, config.first_learning_rate(len(dataset.train.labels)))
    check_training_memory(resolved.input_shape, resolved.batch_size, model.count_params(), available=free)
    return model


def _continue(settings: Settings, resolved: Resolved, run: Path | None, dataset, runner: Runner,
              state: dict, verbose: int) -> FitResult:  # fmt: skip
    """Train on from a run folder's last checkpoint (``last.keras`` + ``state.json``); without a folder (a worker
    other than the chief), from a new model that :func:`imgclf.training.distributed.steps.fit` gives the chief's
    values."""
    class_mode = resolve_class_mode(settings.class_mode, dataset.num_classes)
    done = int(state["epochs_completed"])
    history = runfiles.history_until(run, done)
    checkpoint, restored = None, run is not None and not runner.multi_worker
    shape = (resolved.input_shape, 1 if class_mode == "binary" else dataset.num_classes)
    if restored:
        with runner.scope():
            model = runfiles.load_model_file(run / runfiles.LAST_FILE, *shape)
    else:  # every worker makes the same variables in the same order; the chief then copies its checkpoint in
        model = new_model(settings, resolved, dataset, class_mode, runner)
        checkpoint = runfiles.load_model_file(run / runfiles.LAST_FILE, *shape) if run is not None else None
    return _train(settings, resolved, model, dataset, class_mode, run, verbose=verbose, initial_epoch=done,
                  history=history, state=state, seed=settings.seed + done, runner=runner, restored=restored,
                  restore_from=checkpoint)  # fmt: skip


def datasets(settings: Settings, resolved: Resolved, dataset: Dataset, skipped: SkippedFiles | None = None, **kwargs):
    """``(train, validation, cache choices)`` of ``dataset`` read and augmented as the settings say
    (:func:`imgclf.training.inputs.training_datasets`; ``kwargs`` override ``batch_size`` and ``cache``)."""
    kwargs.setdefault("batch_size", resolved.batch_size)
    kwargs.setdefault("cache", settings.cache)
    return training_datasets(dataset, image=resolved.image, class_mode=settings.class_mode, augment=resolved.augment,
                             seed=settings.seed, skipped=skipped, **kwargs)  # fmt: skip


def _train(settings: Settings, resolved: Resolved, model, dataset: Dataset, class_mode: str, run: Path | None,
           **kwargs) -> FitResult:  # fmt: skip
    with decoded_cache_dir(run) as cache_dir:
        return _train_from(settings, resolved, model, dataset, class_mode, run, cache_dir, **kwargs)


def _train_from(settings: Settings, resolved: Resolved, model, dataset: Dataset, class_mode: str, run: Path | None,
                cache_dir: Path, *, seed: int | None = None, verbose: int = 1, runner: Runner,
                **kwargs) -> FitResult:  # fmt: skip
    skipped = SkippedFiles()
    build = functools.partial(datasets, settings, resolved, dataset, skipped, cache_dir=cache_dir)  # a shard each
    train_ds, val_ds, choices = runner.datasets(build, resolved.batch_size)
    if verbose:
        say_cache(choices, dataset.validation is not None)
    cache_features = bool(resolved.backbone) and settings.cache_features and resolved.augment.is_identity
    cache_features = cache_features and not runner.distributed
    key = by_image = None
    if cache_features:
        weights = weights_fingerprint(resolved.weights) or f"random, seed {settings.seed}"  # random: its seed
        description = [
            "pooled",
            resolved.backbone,
            weights,
            list(resolved.input_shape),
            resolved.interpolation,
            settings.cut_layer,
            resolved.head,
            resolved.precision,  # bfloat16 features are other numbers
        ]
        shas = file_shas(dataset)
        key = feature_cache_key([*description, class_mode], dataset, shas)
        by_image = _by_image(settings, resolved, dataset, description, shas, class_mode, skipped)
    in_order = datasets(settings, resolved, dataset, skipped, in_order=True)[0] if cache_features else None
    data = TrainingData(train_ds, val_ds, in_order, dataset.train.labels, dataset.num_classes, skipped, by_image,
                        tuple(dataset.class_names))
    config = TrainingConfig.of(resolved, class_mode, cache_features=cache_features, feature_key=key)
    with seeded(settings.seed if seed is None else seed):
        result = train(model, data, config, run, verbose=verbose, runner=runner, **kwargs)
        trained = runner.local_copy(inference_model(result.model))  # new layers draw seeds: inside
    del data, train_ds  # the training stream and its in-memory cache can go before calibration decodes
    cached = result.features if not len(result.skipped) else None
    if cached is not None:  # one pass per image: the features training read serve calibration and evaluation
        # (in bfloat16 they differ from the saved float32 model's by bfloat16's rounding, ~3 significant digits:
        # what the head trained on, and far inside the validation figures' own uncertainty)
        done, proba = _after_training_cached(settings, trained, cached, class_mode, run)
    else:
        done, proba = _after_training(settings, resolved, trained, dataset, in_order, val_ds, runner, run), None
    calibration, ood = done if done is not None else (None, None)
    return FitResult(
        trained, np.asarray(dataset.class_names), class_mode, resolved.image, resolved.epochs, resolved.augment,
        result.history, result.stop_reason, result.skipped, result.fine_tune_start, result.features_from_cache, dataset,
        {split: choice.mode for split, choice in choices.items()}, calibration, ood, run, validation_proba=proba,
    )  # fmt: skip


def _by_image(settings: Settings, resolved: Resolved, dataset: Dataset, description: list, shas, class_mode: str,
              skipped: SkippedFiles) -> ImageFeatures | None:  # fmt: skip
    """How the run finds its images' features one by one (None for pixels or packed data)."""

    def stream(samples: Samples):
        part = Dataset(dataset.root, dataset.class_names, samples, None, dataset.layout)
        return datasets(settings, resolved, part, skipped, in_order=True, cache="none")[0]

    return image_features(dataset, description, shas, class_mode, stream)


def _after_training(settings: Settings, resolved: Resolved, trained, dataset: Dataset, in_order, val_ds,
                    runner: Runner, run: Path | None):  # fmt: skip
    """Calibrate ``trained`` reading the images again (:func:`imgclf.unknown.calibrate.calibrate`), or ``None``."""
    if not settings.calibrate:
        return None
    # validation (and cached-feature) batches hold decoded images by now: read from memory, else one streamed
    # pass: a second in-memory copy of the training images doubled the peak (issue 23)
    if in_order is None:
        in_order = datasets(settings, resolved, dataset, in_order=True, cache="none")[0]
    val_ds = val_ds if not runner.distributed else datasets(settings, resolved, dataset)[1]
    return calibrate(trained, in_order, val_ds, settings.ood_method, settings.ood_false_alarm_rate, run)


def _after_training_cached(settings: Settings, trained, cached: tuple, class_mode: str, run: Path | None):
    """``(calibration or None, validation probabilities or None)`` of ``trained`` from the cached features
    ``((f_train, y_train), (f_val, y_val) or None)`` that its head trained on: the head alone runs (milliseconds)."""
    (f_train, y_train), val = cached
    if val is None or not len(val[0]):
        return None, None
    head, done = split_at_features(trained, pooled=True)[1], None
    if settings.calibrate:
        pairs = [(head_outputs(head, f)[1], target_labels(y)) for f, y in (val, (f_train, y_train))]
        done = calibrate_features(trained, *pairs, settings.ood_method, settings.ood_false_alarm_rate, run)
    proba = head_outputs(head, val[0])[0]  # after the temperature is folded in (the head shares its layers)
    return done, np.concatenate([1.0 - proba, proba], axis=1) if class_mode == "binary" else proba


def lr_find(settings: Settings, resolved: Resolved, X, y=None, *, start_lr: float = LR_FIND_START_LR,
            end_lr: float = LR_FIND_END_LR, steps: int = LR_FIND_STEPS) -> LrFindResult:  # fmt: skip
    """The learning-rate range test (Smith 2017; fastai's ``lr_find``) for these settings: a fresh model trains up
    to ``steps`` batches of ``X`` (augmented as ``fit`` would) while the rate grows exponentially from
    ``start_lr`` to ``end_lr`` (:func:`imgclf.training.lr_find.range_test`).

    Raises:
        ImgclfError: a bad sweep, unusable data, or a loss that diverges at once.
    """
    check_sweep(start_lr, end_lr, steps)
    dataset = load(settings, resolved, X, y)
    class_mode = resolve_class_mode(settings.class_mode, dataset.num_classes)
    config = TrainingConfig.of(resolved, class_mode)
    with seeded(settings.seed), decoded_cache_dir(None) as cache_dir:
        model = build_model(settings, resolved, dataset.num_classes, class_mode)
        compile_model(model, config, start_lr)
        train_ds = datasets(settings, resolved, dataset, cache_dir=cache_dir)[0]
        return range_test(model, train_ds, start_lr=start_lr, end_lr=end_lr, steps=steps)
