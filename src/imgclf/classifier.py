"""``ImageClassifier``: a scikit-learn estimator over the folder → model → predictions workflow.

It is thin: its parameters are the fields of :class:`imgclf.settings.Settings` (``__init__`` only stores
them); ``fit`` resolves them (:func:`imgclf.settings.resolved.resolve`), calls one training function
(:func:`imgclf.training.fit.fit`) and copies the :class:`~imgclf.training.fit.FitResult` it returns into
trailing-underscore attributes; prediction goes through :class:`imgclf.predict.predictor.Predictor` and changes
nothing on the estimator.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from imgclf import settings as _settings
from imgclf.data.images import ImageSpec
from imgclf.data.samples import Dataset
from imgclf.fitted import UsesFittedModel
from imgclf.pipeline.augment import make_augmentation
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.predict.predictor import Predictor
from imgclf.runs import record as runfiles
from imgclf.runs.history import read_history_csv
from imgclf.settings import LR_FIND_END_LR, LR_FIND_START_LR, LR_FIND_STEPS, Settings
from imgclf.settings.resolved import Resolved, resolve
from imgclf.training import fit as training
from imgclf.training.lr_find import LrFindResult
from imgclf.update.parent import annealed

#: Attributes ``fit`` sets; a new ``fit`` removes them first, so a fit that fails leaves nothing fitted.
FITTED_ATTRIBUTES = (
    "classes_", "class_mode_", "target_size_", "color_mode_", "epochs_", "augment_", "model_", "history_",
    "stop_reason_", "skipped_", "fine_tune_start_", "features_from_cache_", "dataset_", "calibration_", "ood_",
    "cache_", "interpolation_", "image_", "from_run_", "validation_proba_", "tracking_error_", "finished_",
)  # fmt: skip


class ImageClassifier(UsesFittedModel, ClassifierMixin, BaseEstimator, Settings):
    """Train a ConvNet on a folder of images (or image paths and labels) and use it.

    A scikit-learn estimator: ``__init__`` only stores its keyword arguments, ``fit`` returns ``self``, learned
    state ends in ``_``; ``get_params``/``set_params``, ``sklearn.base.clone``, ``score``, ``GridSearchCV`` and
    ``cross_val_score`` work. The parameters are the fields of :class:`imgclf.settings.Settings`, declared once
    there (with their help and defaults) for the estimator, ``imgclf train``'s options and the documentation;
    ``help(ImageClassifier)`` lists them under ``Args``.

    Attributes:
        classes_ (ndarray): class labels, shape ``(n_classes,)``; output ``i`` of the model is ``classes_[i]``
            (folder names, or the distinct ``y``).
        image_ (ImageSpec): how images are read for the model (what ``target_size``, ``color_mode`` and
            ``interpolation`` resolved to; ``target_size_``, ``color_mode_`` and ``interpolation_`` are its parts).
        class_mode_, epochs_, augment_: what ``class_mode``, ``epochs`` and ``augment`` resolved to.
        model_ (keras.Model): the trained model, float32, taking uint8 ``(batch, height, width, channels)``; what
            ``model.keras`` holds.
        history_ (list[dict]): per-epoch ``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
            ``learning_rate``, ``seconds``.
        stop_reason_ (str | None): why training stopped before its last epoch (target reached, early stopping).
        skipped_ (SkippedFiles): training and validation files ``fit`` could not read (predicting sets nothing:
            :meth:`predictions` says which files it could not read).
        calibration_ (dict | None), ood_ (OodDetector | None): the temperature-scaling figures and the
            out-of-distribution detector (:mod:`imgclf.unknown`).
        validation_proba_ (ndarray | None): float32 ``(n_validation, n_classes)``, the validation images'
            probabilities from the backbone features training cached (``None`` without them); the report evaluates
            from them instead of reading the images again.
        finished_ (FinishedRun | None): what finishing the run folder wrote and found — the diagnosis, the
            TensorFlow-free copy, the report, the tracking (:mod:`imgclf.report.finish`); ``None`` without
            ``run_dir``.
        tracking_error_ (str | None): why ``track`` logged nothing (a server that did not answer in time or refused,
            :class:`imgclf.runs.tracking.TrackingFailed`); the run folder is whole either way.

    Raises:
        ImgclfError: from ``fit``, for any setting out of range (the message names it and the value received).

    Note:
        ``seed`` seeds weight initialisation, the validation split, shuffling, augmentation and dropout. ``fit``
        sets the global random states only while it runs and restores them
        (:func:`imgclf.training.seeding.seeded`).

    Examples:
        >>> clf = ImageClassifier(epochs=15).fit("cats_and_dogs_filtered")  # doctest: +SKIP
        >>> clf.predict(["my_cat.jpg"])  # doctest: +SKIP
        array(['cats'], dtype='<U4')
    """

    # -- settings ----------------------------------------------------------------------------------
    def resolve_settings(self) -> Resolved:
        """Check every setting and apply the defaults that depend on others (:func:`imgclf.settings.resolved.resolve`).

        Raises:
            ImgclfError: a setting out of range, ``model`` together with ``backbone``, fine-tuning without a
                backbone, or ``tensorboard`` without the TensorBoard package.
        """
        return resolve(self)

    # -- training ----------------------------------------------------------------------------------
    def fit(self, X, y=None, *, run_dir: str | os.PathLike | None = None, callbacks=(), verbose: int = 1,
            from_run: str | os.PathLike | None = None):  # fmt: skip
        """Train.

        Args:
            X: a dataset folder (see :func:`imgclf.load_folder`) or named dataset, a pixel CSV, a loaded
                :class:`~imgclf.data.samples.Dataset`, or a sequence of image file paths (then ``y`` gives
                their labels; ``validation_split`` of them is held out, stratified).
            y: labels of the paths in ``X``, array-like of shape ``(n_samples,)``; ``None`` for a folder.
            run_dir: if given, a folder to write the run into: ``config.yaml`` and ``classes.json`` before
                training; ``history.csv``, ``last.keras``, ``best.keras`` and ``state.json`` after every epoch
                (so ``ImageClassifier.resume`` can continue a killed run); then ``model.keras``,
                ``summary.txt`` and ``plots/{accuracy,loss}.png``; then the run is finished as ``imgclf train``
                finishes it (:func:`imgclf.report.finish.finish_run`: the TensorFlow-free copy ``fast/``,
                ``report.html``, ``metrics.json``, ``evaluation/``, and the MLflow run with ``track``).
            callbacks: extra ``keras.callbacks.Callback`` objects.
            verbose: 1 draws a Rich progress bar per epoch on stderr; 0 is silent.
            from_run: a run folder to start from instead of a new model (scikit-learn's ``warm_start``, for a
                run on disk): its classes keep their output units, new class folders get new ones, a class it had
                that ``X`` lacks is refused; the model and image settings must be the run's
                (:mod:`imgclf.update.parent`). ``config.yaml`` records it as ``from:``.

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
        result = training.fit(self, self.resolve_settings(), X, y, run_dir=run_dir, callbacks=callbacks,
                              verbose=verbose, from_run=from_run)  # fmt: skip
        return self._fitted(result)

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
        return clf._fitted(training.resume(clf, clf.resolve_settings(), run, state, data, verbose))

    def _fitted(self, result: training.FitResult) -> ImageClassifier:
        """Copy a :class:`~imgclf.training.fit.FitResult` into the fitted attributes, and save the run folder this
        process wrote (none on a worker other than the chief)."""
        self.model_, self.classes_, self.class_mode_ = result.model, result.classes, result.class_mode
        self._set_image(result.image)
        self.epochs_, self.augment_ = result.epochs, result.augment
        self.history_, self.stop_reason_ = result.history, result.stop_reason
        self.skipped_, self.fine_tune_start_ = result.skipped, result.fine_tune_start
        self.features_from_cache_, self.dataset_, self.cache_ = result.features_from_cache, result.dataset, result.cache
        self.calibration_, self.ood_, self.from_run_ = result.calibration, result.ood, result.parent
        self.validation_proba_ = result.validation_proba
        self.finished_ = self.tracking_error_ = None
        if result.run is not None:  # the run folder is the same whoever started it (imgclf.report.finish)
            from imgclf.report.finish import finish_run

            self.save(result.run)
            self.finished_ = finish_run(self, result.run)
            self.tracking_error_ = self.finished_.tracking_error
        return self

    def _set_image(self, image: ImageSpec) -> None:
        self.image_ = image  # and its parts, as scikit-learn names what a setting resolved to
        self.target_size_, self.color_mode_ = image.target_size, image.color_mode
        self.interpolation_ = image.interpolation

    def training_datasets(self, dataset: Dataset, skipped: SkippedFiles | None = None, *, in_order: bool = False,
                          cache_dir: Path | None = None):  # fmt: skip
        """The ``tf.data`` datasets ``fit`` trains and validates on, ``(train, validation)``
        (:func:`imgclf.training.inputs.training_datasets` with these settings; ``validation`` is ``None`` without
        validation data or with ``in_order``).

        Raises:
            ImgclfError: a setting out of range.
        """
        resolved = self.resolve_settings()
        return training.datasets(self, resolved, dataset, skipped, in_order=in_order, cache_dir=cache_dir)[:2]

    def lr_find(self, X, y=None, *, start_lr: float = LR_FIND_START_LR, end_lr: float = LR_FIND_END_LR,
                steps: int = LR_FIND_STEPS, plot: str | os.PathLike | None = None) -> LrFindResult:  # fmt: skip
        """The learning-rate range test (Smith 2017; fastai's ``lr_find``) for these settings: a fresh model trains
        up to ``steps`` batches of ``X`` (data as :meth:`fit` takes it, augmented as ``fit`` would) while the rate
        grows exponentially from ``start_lr`` to ``end_lr`` (:func:`imgclf.training.fit.lr_find`); ``plot``
        names a PNG of the loss against the rate. The classifier stays unfitted and unchanged.

        Returns:
            An :class:`~imgclf.training.lr_find.LrFindResult`; its ``suggestion`` is where the loss falls fastest.

        Raises:
            ImgclfError: a bad sweep or setting, unusable data, or a loss that diverges at once.
        """
        result = training.lr_find(self, self.resolve_settings(), X, y, start_lr=start_lr, end_lr=end_lr, steps=steps)
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
        classes = dataset.class_names if dataset is not None else self.classes_
        settings, resolved = self, self.resolve_settings()
        if getattr(self, "from_run_", None) is not None:  # what the update trained with: its annealed rate
            settings, resolved = annealed(settings, resolved)
        record = training.run_record(settings, resolved, classes, self.class_mode_, dataset)
        record.parent = getattr(self, "from_run_", None)
        record.write(folder)
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
        clf._set_image(predictor.image)
        clf.ood_, clf.calibration_ = predictor.ood, predictor.calibration
        clf.epochs_ = record.resolved.get("epochs")
        clf.augment_ = make_augmentation(clf.augment)
        history = Path(path) / runfiles.HISTORY_FILE
        if history.is_file():
            clf.history_ = read_history_csv(history)
        return clf


#: ``help(ImageClassifier)`` lists every parameter, from the settings' one declaration.
ImageClassifier.__doc__ += "\n    Args:\n" + _settings.describe() + "\n"


__all__ = ["ImageClassifier"]
