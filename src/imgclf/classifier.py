"""``ImageClassifier``: a scikit-learn estimator over the folder → model → predictions workflow.

It is thin: its parameters are the fields of :class:`imgclf.settings.Settings` (``__init__`` only stores
them); ``fit`` checks them, resolves what they imply into trailing-underscore attributes, builds the model
(:mod:`imgclf.models`) and the datasets (:mod:`imgclf.pipeline`), and hands both to the trainer
(:func:`imgclf.training.trainer.train`); prediction goes through :class:`imgclf.predict.predictor.Predictor`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

import imgclf
from imgclf import settings as _settings
from imgclf.data.folders import Dataset
from imgclf.fitted import UsesFittedModel
from imgclf.models import create_model, inference_model
from imgclf.pipeline.augment import make_augmentation
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.tfdata import available_memory, resolve_class_mode
from imgclf.predict.predictor import Predictor
from imgclf.runs import record as runfiles
from imgclf.settings import Settings
from imgclf.training import cluster, distribute
from imgclf.training.budget import check_training_memory
from imgclf.training.features import feature_cache_key, weights_fingerprint
from imgclf.training.inputs import decoded_cache_dir, load_data, say_cache, training_datasets
from imgclf.training.lr_find import LrFindResult, check_sweep, range_test
from imgclf.training.resolved import Resolved, resolve
from imgclf.training.seeding import seeded
from imgclf.training.trainer import TrainingConfig, TrainingData, compile_model, train
from imgclf.unknown.calibrate import calibrate

#: Attributes ``fit`` sets; a new ``fit`` removes them first, so a fit that fails leaves nothing fitted.
FITTED_ATTRIBUTES = (
    "classes_", "class_mode_", "target_size_", "color_mode_", "epochs_", "augment_", "model_", "history_",
    "stop_reason_", "skipped_", "fine_tune_start_", "features_from_cache_", "dataset_", "calibration_", "ood_",
    "cache_", "interpolation_",
)  # fmt: skip


class ImageClassifier(UsesFittedModel, ClassifierMixin, BaseEstimator, Settings):
    __doc__ = f"""Train a ConvNet on a folder of images (or image paths and labels) and use it.

    A scikit-learn estimator: ``__init__`` only stores its keyword arguments, ``fit`` returns ``self``, learned
    state ends in ``_``; ``get_params``/``set_params``, ``sklearn.base.clone``, ``score``, ``GridSearchCV`` and
    ``cross_val_score`` work. The parameters are :class:`imgclf.settings.Settings`' fields:

    Parameters
    ----------
{_settings.describe()}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; output ``i`` of the model is ``classes_[i]`` (folder names, or the distinct ``y``).
    class_mode_, target_size_, color_mode_, epochs_, augment_ :
        What ``class_mode``, ``target_size``, ``color_mode``, ``epochs`` and ``augment`` resolved to.
    model_ : keras.Model
        The trained model, float32, taking uint8 ``(batch, height, width, channels)``; what ``model.keras`` holds.
    history_ : list of dict
        Per-epoch ``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``learning_rate``, ``seconds``.
    stop_reason_ : str or None
        Why training stopped before its last epoch (target reached, early stopping).
    skipped_ : SkippedFiles
        Files that could not be read by the last ``fit`` or ``predict_proba``.

    Raises
    ------
    ImgclfError
        From ``fit``, for any setting out of range (the message names it and the value received).

    Notes
    -----
    ``seed`` seeds weight initialisation, the validation split, shuffling, augmentation and dropout. ``fit``
    sets the global random states only while it runs and restores them (:func:`imgclf.training.seeding.seeded`).

    Examples
    --------
    >>> clf = ImageClassifier(epochs=15).fit("cats_and_dogs_filtered")  # doctest: +SKIP
    >>> clf.predict(["my_cat.jpg"])  # doctest: +SKIP
    array(['cats'], dtype='<U4')
    """

    # -- settings ----------------------------------------------------------------------------------
    def resolve_settings(self) -> Resolved:
        """Check every setting and apply the defaults that depend on others (:func:`imgclf.training.resolved.resolve`).

        Raises:
            ImgclfError: a setting out of range, ``model`` together with ``backbone``, fine-tuning without a
                backbone, or ``tensorboard`` without the TensorBoard package.
        """
        return resolve(self)

    # -- training ----------------------------------------------------------------------------------
    def fit(self, X, y=None, *, run_dir: str | os.PathLike | None = None, callbacks=(), verbose: int = 1):
        """Train.

        Args:
            X: a dataset folder (see :func:`imgclf.load_folder`) or named dataset, a pixel CSV, a loaded
                :class:`~imgclf.data.folders.Dataset`, or a sequence of image file paths (then ``y`` gives
                their labels; ``validation_split`` of them is held out, stratified).
            y: labels of the paths in ``X``, array-like of shape ``(n_samples,)``; ``None`` for a folder.
            run_dir: if given, a folder to write the run into: ``config.yaml`` and ``classes.json`` before
                training; ``history.csv``, ``last.keras``, ``best.keras`` and ``state.json`` after every epoch
                (so ``ImageClassifier.resume`` can continue a killed run); then ``model.keras``,
                ``summary.txt`` and ``plots/{accuracy,loss}.png``.
            callbacks: extra ``keras.callbacks.Callback`` objects.
            verbose: 1 draws a Rich progress bar per epoch on stderr; 0 is silent.

        Returns:
            ``self``.

        Raises:
            ImgclfError: a setting out of range (see :meth:`resolve_settings`), unusable data (see
                :func:`imgclf.load_folder`), a ``target_size`` too small for the model, settings that need more
                memory than is available (:func:`imgclf.training.budget.check_training_memory`), or training
                images none of which can be read.
        """
        for name in FITTED_ATTRIBUTES:
            self.__dict__.pop(name, None)
        resolved = self.resolve_settings()
        strategy = cluster.get_strategy(self.distribute)  # before TensorFlow runs anything: multi-worker needs it
        dataset = self._load_data(X, y, resolved)
        class_mode = resolve_class_mode(self.class_mode, dataset.num_classes)
        run, _ = cluster.own_folder(run_dir, strategy)  # None on a worker other than the chief
        record = self._run_config(resolved, dataset, class_mode)
        state = distribute.restartable(run, record) if strategy is not None else None
        state = distribute.chief_state(strategy, state)
        if state is not None:  # a restarted cluster: on from the chief's last checkpoint (as BackupAndRestore)
            self._continue(run, dataset, resolved, strategy, state, verbose)
        else:
            model = self._new_model(resolved, dataset, class_mode, strategy)
            if run is not None:
                record.write(run)
            self._train(model, dataset, resolved, class_mode, run, callbacks=callbacks, verbose=verbose,
                        strategy=strategy)  # fmt: skip
        if run is not None:
            self.save(run)
        return self

    def _new_model(self, resolved: Resolved, dataset: Dataset, class_mode: str, strategy):
        """The compiled model to train (in ``strategy``'s scope), once the memory it needs is known to be there."""
        free = available_memory()
        check_training_memory(resolved.input_shape, resolved.batch_size, available=free)  # before allocating
        config = TrainingConfig.of(self, resolved, class_mode)
        with seeded(self.seed), cluster.scope(strategy):
            model = self._build_model(resolved, dataset.num_classes, class_mode)
            compile_model(model, config, config.first_learning_rate(len(dataset.train.labels)))
        check_training_memory(resolved.input_shape, resolved.batch_size, model.count_params(), available=free)
        return model

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, verbose: int = 1) -> ImageClassifier:
        """Continue a run from its last completed epoch (after a crash, a kill or Ctrl-C).

        Replays ``config.yaml`` (every setting, data settings included), reloads the data it names,
        ``last.keras`` (weights *and* optimizer state) and ``state.json``; the history keeps every finished
        epoch once.

        Returns:
            The fitted classifier.

        Raises:
            ImgclfError: not a resumable run (no ``last.keras`` / ``state.json``), already finished, its
                dataset is gone, or ``last.keras`` cannot be loaded safely.
        """
        run, state, record, data = runfiles.resumable(run_dir)
        clf = cls(**record.known_settings(_settings.names()))
        resolved = clf.resolve_settings()
        strategy = cluster.get_strategy(clf.distribute)
        clf._continue(run, clf._load_data(data, None, resolved), resolved, strategy, state, verbose)
        clf.save(run)
        return clf

    def _continue(self, run: Path | None, dataset: Dataset, resolved: Resolved, strategy, state: dict,
                  verbose: int):  # fmt: skip
        """Train on from a run folder's last checkpoint (``last.keras`` + ``state.json``); without a folder (a worker
        other than the chief), from a new model that :func:`imgclf.training.distribute.fit` gives the chief's
        values."""
        class_mode = resolve_class_mode(self.class_mode, dataset.num_classes)
        done = int(state["epochs_completed"])
        history = runfiles.history_until(run, done)
        checkpoint, restored = None, run is not None and not cluster.is_multi_worker(strategy)
        shape = (resolved.input_shape, 1 if class_mode == "binary" else dataset.num_classes)
        if restored:
            with cluster.scope(strategy):
                model = runfiles.load_model_file(run / runfiles.LAST_FILE, *shape)
        else:  # every worker makes the same variables in the same order; the chief then copies its checkpoint in
            model = self._new_model(resolved, dataset, class_mode, strategy)
            checkpoint = runfiles.load_model_file(run / runfiles.LAST_FILE, *shape) if run is not None else None
        self._train(model, dataset, resolved, class_mode, run, verbose=verbose, initial_epoch=done, history=history,
                    state=state, seed=self.seed + done, strategy=strategy, restored=restored,
                    restore_from=checkpoint)  # fmt: skip

    def _load_data(self, X, y, resolved: Resolved) -> Dataset:
        return load_data(X, y, validation_split=resolved.validation_split, seed=self.seed,
                         label_pattern=self.label_pattern, label_column=self.label_column)  # fmt: skip

    def _build_model(self, resolved: Resolved, num_classes: int, class_mode: str):
        return create_model(
            resolved.backbone or resolved.model, resolved.input_shape, num_classes, class_mode, resolved.precision,
            pretrained=resolved.weights if resolved.backbone else None, cut_layer=self.cut_layer, head=resolved.head,
            dropout=resolved.dropout,
        )  # fmt: skip

    def training_datasets(self, dataset: Dataset, skipped: SkippedFiles | None = None, *, in_order: bool = False,
                          cache_dir: Path | None = None):  # fmt: skip
        """The ``tf.data`` datasets ``fit`` trains and validates on, ``(train, validation)``
        (:func:`imgclf.training.inputs.training_datasets` with these settings; ``validation`` is ``None`` without
        validation data or with ``in_order``).

        Raises:
            ImgclfError: a setting out of range.
        """
        return self._datasets(dataset, skipped, in_order=in_order, cache_dir=cache_dir)[:2]

    def _datasets(self, dataset: Dataset, skipped: SkippedFiles | None = None, **kwargs):
        resolved = self.resolve_settings()
        kwargs.setdefault("batch_size", resolved.batch_size)
        kwargs.setdefault("cache", self.cache)
        return training_datasets(
            dataset, target_size=resolved.target_size, color_mode=resolved.color_mode,
            interpolation=resolved.interpolation, class_mode=self.class_mode, augment=resolved.augment, seed=self.seed,
            skipped=skipped, **kwargs,
        )  # fmt: skip

    def _train(self, model, dataset: Dataset, resolved: Resolved, class_mode: str, run: Path | None, *,
               seed: int | None = None, **kwargs) -> None:  # fmt: skip
        with decoded_cache_dir(run) as cache_dir:
            self._train_from(model, dataset, resolved, class_mode, run, cache_dir, seed=seed, **kwargs)

    def _train_from(self, model, dataset: Dataset, resolved: Resolved, class_mode: str, run: Path | None,
                    cache_dir: Path, *, seed: int | None = None, verbose: int = 1, strategy=None,
                    **kwargs) -> None:  # fmt: skip
        skipped = SkippedFiles()
        build = functools.partial(self._datasets, dataset, skipped, cache_dir=cache_dir)  # distributed: a shard each
        train_ds, val_ds, choices = distribute.worker_datasets(strategy, build, resolved.batch_size)
        self.cache_ = {split: choice.mode for split, choice in choices.items()}
        if verbose:
            say_cache(choices, dataset.validation is not None)
        cache_features = bool(resolved.backbone) and self.cache_features and resolved.augment.is_identity
        cache_features = cache_features and strategy is None
        key = None
        if cache_features:
            key = feature_cache_key([resolved.backbone, weights_fingerprint(resolved.weights),
                                     list(resolved.input_shape), resolved.interpolation, self.cut_layer,
                                     resolved.head, class_mode], dataset)  # fmt: skip
        data = TrainingData(
            train_ds, val_ds, (self.training_datasets(dataset, skipped, in_order=True)[0] if cache_features else None),
            dataset.train.labels, dataset.num_classes, skipped,
        )  # fmt: skip
        config = TrainingConfig.of(self, resolved, class_mode, cache_features=cache_features, feature_key=key)
        with seeded(self.seed if seed is None else seed):
            result = train(model, data, config, run, verbose=verbose, strategy=strategy, **kwargs)
            self.model_ = distribute.local_copy(inference_model(result.model))  # new layers draw seeds: inside
        self.classes_ = np.asarray(dataset.class_names)
        self.class_mode_ = class_mode
        self.target_size_, self.color_mode_ = resolved.target_size, resolved.color_mode
        self.interpolation_ = resolved.interpolation
        self.epochs_, self.augment_ = resolved.epochs, resolved.augment
        self.history_, self.stop_reason_ = result.history, result.stop_reason
        self.skipped_, self.fine_tune_start_ = result.skipped, result.fine_tune_start
        self.features_from_cache_, self.dataset_ = result.features_from_cache, dataset
        done = None
        in_order = data.train_in_order
        del data, train_ds  # the training stream and its in-memory cache can go before calibration decodes
        if self.calibrate:  # validation (and cached-feature) batches hold decoded images by now: read from memory
            # else one streamed pass: a second in-memory copy of the training images doubled the peak (issue 23)
            in_order = self._datasets(dataset, in_order=True, cache="none")[0] if in_order is None else in_order
            val_ds = val_ds if strategy is None else self._datasets(dataset)[1]
            done = calibrate(self.model_, in_order, val_ds, self.ood_method, self.ood_false_alarm_rate, run)
        self.calibration_, self.ood_ = done if done is not None else (None, None)

    def _run_config(self, resolved: Resolved, dataset: Dataset | None, class_mode: str) -> runfiles.RunConfig:
        classes = dataset.class_names if dataset is not None else self.classes_
        return runfiles.RunConfig.of(self.get_params(), classes, resolved, class_mode, dataset, imgclf.__version__)

    def lr_find(self, X, y=None, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 100,
                plot: str | os.PathLike | None = None) -> LrFindResult:  # fmt: skip
        """The learning-rate range test (Smith 2017; fastai's ``lr_find``) for these settings: a fresh model trains
        up to ``steps`` batches of ``X`` (data as :meth:`fit` takes it, augmented as ``fit`` would) while the rate
        grows exponentially from ``start_lr`` to ``end_lr`` (:func:`imgclf.training.lr_find.range_test`); ``plot``
        names a PNG of the loss against the rate. The classifier stays unfitted and unchanged.

        Returns:
            An :class:`~imgclf.training.lr_find.LrFindResult`; its ``suggestion`` is where the loss falls fastest.

        Raises:
            ImgclfError: a bad sweep or setting, unusable data, or a loss that diverges at once.
        """
        check_sweep(start_lr, end_lr, steps)
        resolved = self.resolve_settings()
        dataset = self._load_data(X, y, resolved)
        class_mode = resolve_class_mode(self.class_mode, dataset.num_classes)
        config = TrainingConfig.of(self, resolved, class_mode)
        with seeded(self.seed), decoded_cache_dir(None) as cache_dir:
            model = self._build_model(resolved, dataset.num_classes, class_mode)
            compile_model(model, config, start_lr)
            result = range_test(model, self._datasets(dataset, cache_dir=cache_dir)[0], start_lr=start_lr,
                                end_lr=end_lr, steps=steps)  # fmt: skip
        if plot is not None:
            result.plot(plot)
        return result

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``model.keras`` (float32, no optimizer: it loads in plain Keras), ``classes.json`` and
        ``config.yaml`` into folder ``path``, each atomically. Returns the folder.

        Raises:
            ImgclfError: not fitted.
        """
        self._check_fitted()
        folder = Path(path)
        dataset = getattr(self, "dataset_", None)
        self._run_config(self.resolve_settings(), dataset, self.class_mode_).write(folder)
        self.predictor().save(folder)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> ImageClassifier:
        """Load a classifier saved by :meth:`save` or a run folder written by ``fit``.

        Raises:
            ImgclfError: ``path`` is not a run folder (see :func:`imgclf.runs.record.check_run_dir`) or its
                files are unreadable.
        """
        predictor = Predictor.from_run(path)
        record = predictor.record  # read once, with the model
        clf = cls(**record.known_settings(_settings.names()))
        clf.model_, clf.classes_, clf.class_mode_ = predictor.model, np.asarray(predictor.classes), predictor.class_mode
        clf.target_size_, clf.color_mode_ = predictor.target_size, predictor.color_mode
        clf.interpolation_ = predictor.interpolation
        clf.ood_, clf.calibration_ = predictor.ood, predictor.calibration
        clf.epochs_ = record.resolved.get("epochs")
        clf.augment_ = make_augmentation(clf.augment)
        history = Path(path) / runfiles.HISTORY_FILE
        if history.is_file():
            from imgclf.runs.history import read_history_csv

            clf.history_ = read_history_csv(history)
        return clf


__all__ = ["ImageClassifier"]
