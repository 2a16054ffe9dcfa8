"""``ImageClassifier``: a scikit-learn-style estimator over the folder → model → predictions workflow."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import keras
import numpy as np

import imgclf
from imgclf import _io
from imgclf.data.folders import (
    Dataset,
    Samples,
    check_validation_split,
    list_images,
    load_eval_samples,
    load_folder,
)
from imgclf.data.images import (
    DEFAULT_INTERPOLATION,
    channels,
    check_color_mode,
    check_interpolation,
    check_target_size,
    load_image,
)
from imgclf.errors import ImgclfError
from imgclf.models import create_model, get_model_spec, resolve_precision
from imgclf.pipeline.augment import Augmentation, make_augmentation
from imgclf.pipeline.dataset import (
    check_class_mode,
    image_dataset,
    resolve_class_mode,
    samples_dataset,
    to_model_input,
)
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.training import run as runfiles
from imgclf.training.optimizers import check_learning_rate, check_optimizer, make_optimizer

DEFAULT_EPOCHS = 15
"""Epochs when none are given (the course trains its cats-vs-dogs ConvNet for 15)."""
TARGET_MAX_EPOCHS = 100
"""Epochs when none are given but ``target_accuracy`` is: an upper bound, training stops at the target."""

VALIDATION_BATCH_SIZE = 100
"""Smallest batch of the validation pass during training (forward passes only)."""

FINE_TUNE_SCHEDULES = ("cosine", "constant")
"""Learning-rate schedules of the fine-tuning phase."""

LOSSES = {
    "binary": "binary_crossentropy",
    "categorical": "categorical_crossentropy",
    "sparse": "sparse_categorical_crossentropy",
}


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ImgclfError(f"{name} must be a positive int. Received: {value!r}")
    return int(value)


class ImageClassifier:
    """Train a ConvNet on a folder of images and use it, scikit-learn style.

    Every setting is an explicit keyword; ``fit`` returns ``self``; learned state ends in ``_``.

    Args:
        model: registry name (see :func:`imgclf.models.list_models`). Default ``"course_small"``.
        target_size: ``(height, width)`` in pixels images are resized to; default the model's own
            (150x150 for the course ConvNets, 28x28 for ``course_28``).
        color_mode: ``"rgb"`` or ``"grayscale"``; default the model's own.
        interpolation: resampling filter used to resize images: ``"nearest"`` (default, as Keras'
            ``load_img`` and so the course's pipeline), ``"bilinear"`` (antialiased), ``"bicubic"``,
            ``"lanczos"``, ``"box"``, ``"hamming"``.
        batch_size: images per batch. Default 20 (the course's).
        epochs: passes over the training images (an upper bound when a callback stops training early).
            Default 15, or :data:`TARGET_MAX_EPOCHS` (100) when ``target_accuracy`` is set, so that training
            runs until the target is reached, as the course's ``myCallback`` exercises expect.
        optimizer: ``"rmsprop"`` (default, the course's), ``"adam"`` or ``"sgd"``.
        learning_rate: optimizer step size. Default 1e-3.
        class_mode: ``"auto"`` (default: ``"binary"`` for 2 classes, else ``"categorical"``),
            ``"binary"``, ``"categorical"`` or ``"sparse"``.
        validation_split: fraction of a one-folder dataset held out for validation; ``None``
            (default) means 0.2; ignored when the data has its own validation folder.
        seed: seed for weights, split and shuffling. Default 0.
        cache: keep decoded images in memory: ``"auto"`` (default, when they fit), ``True``, ``False``.
        augment: random augmentation of training images only: ``None`` / ``"none"`` (default),
            ``"course"`` (the course's ``ImageDataGenerator`` settings), a dict of
            :class:`~imgclf.pipeline.augment.Augmentation` settings (``rotation_range``, ...), or an
            ``Augmentation``. Validation, evaluation and prediction images are never augmented.
        target_accuracy: stop once ``monitor`` reaches it at the end of an epoch (the course's
            ``myCallback``; e.g. 0.999). Default ``None``.
        monitor: ``"accuracy"`` (default, training accuracy as in the course) or ``"val_accuracy"``.
        early_stopping: stop when the validation loss (training loss without validation) has not
            improved for this many epochs. Default ``None``.
        class_weight: ``"balanced"`` (scikit-learn's inverse-frequency weights), a dict
            ``{class_index: weight}``, or ``None`` (default).
        reduce_lr: divide the learning rate by 5 when the validation loss has not improved for this
            many epochs (``ReduceLROnPlateau``). Default ``None``.
        tensorboard: write TensorBoard logs into the run folder's ``tensorboard/``.
        backbone: a pretrained backbone (:func:`imgclf.models.backbones.list_backbones`) instead of
            ``model``: transfer learning, frozen backbone + new head. Default ``None``.
        weights: the backbone's weights: ``"imagenet"`` (default; downloaded once into the cache), a
            local weight file, or ``None`` (random initialisation).
        cut_layer: the backbone layer feeding the head (default the backbone's: ``mixed7`` for
            InceptionV3, the last layer otherwise).
        head: ``"course"`` (Flatten, Dense 1024, Dropout; default) or ``"gap"`` (global average pooling,
            Dropout).
        dropout: the head's dropout rate. Default 0.2.
        fine_tune: after the frozen phase, unfreeze the top this-many backbone layers with weights and
            train on at a tenth of the learning rate (BatchNormalization stays frozen).
        fine_tune_from: the same, unfreezing every backbone layer from this one on.
        fine_tune_epochs: epochs of the fine-tuning phase (default ``epochs``).
        fine_tune_schedule: learning rate of the fine-tuning phase: ``"cosine"`` (default: a tenth of
            ``learning_rate``, annealed to 0 along a half cosine by the phase's last step) or ``"constant"``
            (a tenth of ``learning_rate`` throughout). See :func:`imgclf.training.trainer.fine_tune_learning_rate`.
        cache_features: with a frozen backbone and no augmentation, run the backbone once and train the
            head on its stored outputs (default ``True``).
        precision: ``"auto"`` (default: ``"mixed_bfloat16"`` where the CPU computes bfloat16 natively, with
            AMX or AVX512-BF16, else ``"float32"``), ``"mixed_bfloat16"`` (compute in bfloat16 with float32
            weights: ~1.5x faster training on such CPUs, e.g. 6.8 → 4.5 s per course_small epoch; slower on others)
            or ``"float32"``.

    Attributes:
        classes_: tuple of class names; output ``i`` of the model is ``classes_[i]``.
        class_mode_: the resolved class mode.
        model_: the trained ``keras.Model``; it takes uint8 ``(batch, height, width, channels)``.
        history_: list of per-epoch dicts (``epoch``, ``loss``, ``accuracy``, ``val_loss``,
            ``val_accuracy``, ``seconds``).
        stop_reason_: why training stopped before ``epochs`` (target reached, early stopping), or ``None``.
        skipped_: files that could not be read by the last ``fit`` or ``predict_proba``.
        dataset_: the :class:`~imgclf.data.folders.Dataset` it was fitted on (not kept by ``load``).

    Raises:
        ImgclfError: at construction, for any setting out of range (the message names it).

    Example:
        >>> clf = ImageClassifier(epochs=15).fit("cats_and_dogs_filtered")  # doctest: +SKIP
        >>> clf.predict(["my_cat.jpg"])  # doctest: +SKIP
        array(['cats'], dtype='<U4')
    """

    def __init__(
        self,
        model: str = "course_small",
        *,
        target_size: tuple[int, int] | None = None,
        color_mode: str | None = None,
        interpolation: str = DEFAULT_INTERPOLATION,
        batch_size: int = 20,
        epochs: int | None = None,
        optimizer: str = "rmsprop",
        learning_rate: float = 1e-3,
        class_mode: str = "auto",
        validation_split: float | None = None,
        seed: int = 0,
        cache: bool | str = "auto",
        augment: str | dict | Augmentation | None = None,
        precision: str = "auto",
        target_accuracy: float | None = None,
        monitor: str = "accuracy",
        early_stopping: int | None = None,
        class_weight: str | dict | None = None,
        reduce_lr: int | None = None,
        tensorboard: bool = False,
        backbone: str | None = None,
        weights: str | None = "imagenet",
        cut_layer: str | None = None,
        head: str = "course",
        dropout: float = 0.2,
        fine_tune: int | None = None,
        fine_tune_from: str | None = None,
        fine_tune_epochs: int | None = None,
        fine_tune_schedule: str = "cosine",
        cache_features: bool = True,
    ):
        self.model = model
        self.backbone = backbone
        if backbone is not None:
            from imgclf.models.backbones import get_backbone

            default_size, default_mode = get_backbone(backbone).default_size, "rgb"
        else:
            spec = get_model_spec(model)
            default_size, default_mode = spec.default_target_size, spec.default_color_mode
        self.target_size = check_target_size(default_size if target_size is None else target_size)
        self.color_mode = check_color_mode(default_mode if color_mode is None else color_mode)
        self.interpolation = check_interpolation(interpolation)
        self.batch_size = _positive_int("batch_size", batch_size)
        if epochs is None:
            epochs = DEFAULT_EPOCHS if target_accuracy is None else TARGET_MAX_EPOCHS
        self.epochs = _positive_int("epochs", epochs)
        self.optimizer = check_optimizer(optimizer)
        self.learning_rate = check_learning_rate(learning_rate)
        self.class_mode = check_class_mode(class_mode)
        self.validation_split = check_validation_split(validation_split)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ImgclfError(f"seed must be a non-negative int. Received: {seed!r}")
        self.seed = int(seed)
        if cache not in ("auto", True, False):
            raise ImgclfError(f"cache must be 'auto', True or False. Received: {cache!r}")
        self.cache = cache
        self.augment = make_augmentation(augment)
        resolve_precision(precision)  # validates the name
        self.precision = precision
        if target_accuracy is not None and (
            isinstance(target_accuracy, bool)
            or not isinstance(target_accuracy, (int, float))
            or not 0 < target_accuracy <= 1
        ):
            raise ImgclfError(f"target_accuracy must be a float in (0, 1]. Received: {target_accuracy!r}")
        self.target_accuracy = None if target_accuracy is None else float(target_accuracy)
        if monitor not in ("accuracy", "val_accuracy"):
            raise ImgclfError(f"monitor must be 'accuracy' or 'val_accuracy'. Received: {monitor!r}")
        self.monitor = monitor
        self.early_stopping = None if early_stopping is None else _positive_int("early_stopping", early_stopping)
        self.reduce_lr = None if reduce_lr is None else _positive_int("reduce_lr", reduce_lr)
        if class_weight not in (None, "balanced") and not isinstance(class_weight, dict):
            raise ImgclfError(f"class_weight must be None, 'balanced' or a dict. Received: {class_weight!r}")
        self.class_weight = class_weight
        self.tensorboard = bool(tensorboard)
        if self.tensorboard:
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise ImgclfError("tensorboard=True needs the TensorBoard package: pip install 'imgclf[tensorboard]'.")
        self.weights = None if weights is None or str(weights).lower() == "none" else str(weights)
        self.cut_layer = cut_layer
        from imgclf.models.transfer import HEADS

        if head not in HEADS:
            raise ImgclfError(f"head must be one of {list(HEADS)}. Received: {head!r}")
        self.head = head
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ImgclfError(f"dropout must be a float in [0, 1). Received: {dropout!r}")
        self.dropout = float(dropout)
        if (fine_tune is not None or fine_tune_from is not None) and backbone is None:
            raise ImgclfError("fine_tune / fine_tune_from need a backbone (backbone='inception_v3', ...).")
        self.fine_tune = None if fine_tune is None else _positive_int("fine_tune", fine_tune)
        self.fine_tune_from = fine_tune_from
        self.fine_tune_epochs = (
            None if fine_tune_epochs is None else _positive_int("fine_tune_epochs", fine_tune_epochs)
        )
        if fine_tune_schedule not in FINE_TUNE_SCHEDULES:
            raise ImgclfError(
                f"fine_tune_schedule must be one of {list(FINE_TUNE_SCHEDULES)}. Received: {fine_tune_schedule!r}"
            )
        self.fine_tune_schedule = fine_tune_schedule
        self.cache_features = bool(cache_features)

    # -- scikit-learn conventions -------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor settings, as a dict (``target_size`` as a list)."""
        return {
            "model": self.model,
            "target_size": list(self.target_size),
            "color_mode": self.color_mode,
            "interpolation": self.interpolation,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "class_mode": self.class_mode,
            "validation_split": self.validation_split,
            "seed": self.seed,
            "cache": self.cache,
            "augment": self.augment.to_dict(),
            "precision": self.precision,
            "target_accuracy": self.target_accuracy,
            "monitor": self.monitor,
            "early_stopping": self.early_stopping,
            "class_weight": self.class_weight,
            "reduce_lr": self.reduce_lr,
            "tensorboard": self.tensorboard,
            "backbone": self.backbone,
            "weights": self.weights,
            "cut_layer": self.cut_layer,
            "head": self.head,
            "dropout": self.dropout,
            "fine_tune": self.fine_tune,
            "fine_tune_from": self.fine_tune_from,
            "fine_tune_epochs": self.fine_tune_epochs,
            "fine_tune_schedule": self.fine_tune_schedule,
            "cache_features": self.cache_features,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"ImageClassifier({args})"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` the model takes."""
        return (*self.target_size, channels(self.color_mode))

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise ImgclfError("this ImageClassifier is not fitted yet: call fit() or ImageClassifier.load() first.")

    # -- training ---------------------------------------------------------------------------------
    def fit(
        self,
        data: str | os.PathLike | Dataset,
        *,
        run_dir: str | os.PathLike | None = None,
        callbacks=(),
        verbose: int = 1,
    ):
        """Train on a dataset folder.

        Args:
            data: a dataset folder (see :func:`imgclf.load_folder`) or a loaded
                :class:`~imgclf.data.folders.Dataset`.
            run_dir: if given, an existing empty folder to write the run into: ``config.yaml`` and
                ``classes.json`` before training; ``history.csv``, ``last.keras``, ``best.keras`` and
                ``state.json`` after every epoch (so ``imgclf train --resume`` can continue a killed run);
                then ``model.keras``, ``summary.txt`` and ``plots/{accuracy,loss}.png``.
            callbacks: extra ``keras.callbacks.Callback`` objects.
            verbose: 1 draws a Rich progress bar per epoch on stderr; 0 is silent.

        Returns:
            ``self``.

        Raises:
            ImgclfError: the data folder is unusable (see :func:`imgclf.load_folder`), or the
                ``target_size`` is too small for the model.
        """
        dataset = data if isinstance(data, Dataset) else load_folder(data, self.validation_split, self.seed)
        class_mode = resolve_class_mode(self.class_mode, dataset.num_classes)
        keras.utils.set_random_seed(self.seed)
        if self.backbone is not None:
            from imgclf.models.transfer import create_transfer_model

            model = create_transfer_model(
                self.backbone, self.input_shape, dataset.num_classes, class_mode, weights=self.weights,
                cut_layer=self.cut_layer, head=self.head, dropout=self.dropout, precision=self.precision,
            )  # fmt: skip
        else:
            model = create_model(self.model, self.input_shape, dataset.num_classes, class_mode, self.precision)
        model.compile(
            optimizer=make_optimizer(self.optimizer, self.learning_rate),
            loss=LOSSES[class_mode],
            metrics=["accuracy"],
        )
        self.classes_ = dataset.class_names
        self.class_mode_ = class_mode
        self.model_ = model
        self.dataset_ = dataset
        run = Path(run_dir) if run_dir is not None else None
        if run is not None:
            self._write_metadata(run)
        from imgclf.training.trainer import train

        train(self, dataset, model, run, callbacks=callbacks, verbose=verbose)
        return self

    def training_datasets(self, dataset: Dataset, skipped: SkippedFiles | None = None, shuffle: bool = True):
        """The ``tf.data`` datasets ``fit`` trains and validates on.

        Training batches are shuffled and augmented (``augment``); validation batches are neither, and hold
        at least :data:`VALIDATION_BATCH_SIZE` images: forward passes alone are cheaper per image in larger
        batches (1,000 images of ``course_small``: 0.32 s at 100 against 0.55 s at 20 on 2 cores), and the
        validation loss and accuracy do not depend on it (Keras averages them over images).
        Files that cannot be decoded are left out and recorded in ``skipped``.

        Returns:
            ``(train, validation)``: datasets of ``(images, targets)``, images uint8
            ``(batch, height, width, channels)``; ``validation`` is ``None`` without validation data.
        """
        class_mode = resolve_class_mode(self.class_mode, dataset.num_classes)
        common = dict(
            target_size=self.target_size,
            color_mode=self.color_mode,
            interpolation=self.interpolation,
            class_mode=class_mode,
            num_classes=dataset.num_classes,
            batch_size=self.batch_size,
            cache=self.cache,
            skipped=skipped,
        )
        train = samples_dataset(dataset.train, shuffle=shuffle, seed=self.seed, augment=self.augment, **common)
        if dataset.validation is None:
            return train, None
        common["batch_size"] = max(self.batch_size, VALIDATION_BATCH_SIZE)
        return train, samples_dataset(dataset.validation, **common)

    def _config(self) -> dict:
        config = {
            "imgclf_version": imgclf.__version__,
            **self.get_params(),
            "class_mode_resolved": self.class_mode_,
            "precision_resolved": resolve_precision(self.precision),
        }
        dataset = getattr(self, "dataset_", None)
        if dataset is not None:
            config["data"] = {
                "path": str(Path(dataset.root).resolve()),
                "layout": dataset.layout,
                "validation_split_used": dataset.validation_split,
                "train_images": len(dataset.train),
                "validation_images": len(dataset.validation) if dataset.validation is not None else 0,
                "train_counts": dict(zip(dataset.class_names, dataset.train.counts(dataset.num_classes))),
            }
        config["versions"] = {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": _tf_version(),
            "numpy": np.__version__,
        }
        return config

    def _write_metadata(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        _io.write_json(folder / runfiles.CLASSES_FILE, list(self.classes_))
        _io.write_yaml(folder / runfiles.CONFIG_FILE, self._config())

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``model.keras``, ``classes.json`` and ``config.yaml`` into folder ``path``.

        Each file is written atomically (temp file + rename). Returns the folder.
        """
        self._check_fitted()
        folder = Path(path)
        self._write_metadata(folder)
        with _io.atomic_path(folder / runfiles.MODEL_FILE) as tmp:
            self.model_.save(tmp)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike) -> ImageClassifier:
        """Load a classifier saved by :meth:`save` or a run folder written by ``fit``.

        Raises:
            ImgclfError: ``path`` is not a run folder (see
                :func:`imgclf.training.run.check_run_dir`) or its files are unreadable.
        """
        folder = runfiles.check_run_dir(path)
        try:
            config = _io.read_yaml(folder / runfiles.CONFIG_FILE)
            classes = _io.read_json(folder / runfiles.CLASSES_FILE)
            params = {k: config[k] for k in cls().get_params() if k in config}
            params["target_size"] = tuple(params["target_size"])
            clf = cls(**params)
            clf.model_ = keras.saving.load_model(folder / runfiles.MODEL_FILE)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ImgclfError):
                raise
            raise ImgclfError(f"cannot load the model in {str(path)!r}: {exc}") from None
        clf.classes_ = tuple(classes)
        clf.class_mode_ = config.get("class_mode_resolved") or resolve_class_mode(clf.class_mode, len(classes))
        history = folder / runfiles.HISTORY_FILE
        if history.is_file():
            from imgclf.training.callbacks import read_history_csv

            clf.history_ = read_history_csv(history)
        return clf

    # -- inference --------------------------------------------------------------------------------
    def _inputs(self, X) -> tuple[list[str] | None, np.ndarray | None]:
        """Split ``X`` into image file paths or an array of preprocessed images."""
        if isinstance(X, (str, os.PathLike)) and str(X).lower().endswith(".csv"):
            from imgclf.data.pixel_csv import read_pixel_csv

            X = read_pixel_csv(X)[0]  # pixel rows; a label column, if any, is ignored
        if isinstance(X, np.ndarray):
            arr = X[None] if X.ndim == 3 else X
            if arr.ndim != 4 or arr.dtype != np.uint8:
                raise ImgclfError(
                    f"image arrays must be uint8 of shape (batch, height, width, channels). "
                    f"Received: {arr.dtype} {arr.shape}"
                )
            arr = to_model_input(arr, self.target_size, self.color_mode, self.interpolation)
            return None, arr
        return expand_image_paths(X), None

    def load_images(self, paths, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Read image files exactly as training does (:func:`imgclf.data.images.load_image`).

        Returns:
            uint8 ``(n, height, width, channels)`` at ``target_size``.

        Raises:
            OSError: a file cannot be decoded.
        """
        size, mode, interpolation = self.target_size, self.color_mode, self.interpolation
        return np.stack([load_image(p, size, mode, interpolation, crop) for p in expand_image_paths(paths)])

    def predict_proba(self, X, *, crop: tuple[int, int, int, int] | None = None, tta: bool = False) -> np.ndarray:
        """Class probabilities.

        Args:
            X: an image file or folder path, a list of them (folders are searched recursively),
                a pixel CSV (one image per row), or a uint8 array ``(batch, height, width, channels)`` /
                ``(height, width, channels)`` of 0-255 pixels (resized to ``target_size`` if needed).
            crop: box ``(x, y, w, h)`` in pixels cut out of every image file before resizing.
            tta: test-time augmentation: average the predictions of 8 flipped and cropped views of
                each image file (:func:`imgclf.pipeline.tta.tta_views`).

        Returns:
            float32 array ``(n, len(classes_))``; rows sum to 1, column ``i`` is ``classes_[i]``.
            Images are in the order of :func:`expand_image_paths`. A file that cannot be decoded gets
            a row of NaN and is listed, with the reason, in ``skipped_`` (never an exception).

        Raises:
            ImgclfError: not fitted, a path does not exist, a folder holds no images, an array has
                the wrong dtype or rank, ``crop``/``tta`` given with arrays, or a crop box outside an image.
        """
        self._check_fitted()
        paths, arr = self._inputs(X)
        self.skipped_ = SkippedFiles()
        if paths is None:
            if crop is not None or tta:
                raise ImgclfError("crop and tta apply to image files, not to arrays: crop or flip the array yourself.")
            return self._probabilities(arr)
        if tta or crop is not None:
            from imgclf.pipeline.tta import NUM_VIEWS, tta_views

            read = (
                (lambda p: tta_views(p, self.target_size, self.color_mode, self.interpolation, crop))
                if tta
                else (lambda p: self.load_images([p], crop))
            )
            views = NUM_VIEWS if tta else 1
            blank = np.zeros((views, *self.input_shape), np.uint8)
            stacks = []
            for p in paths:
                try:
                    stacks.append(read(p))
                except ImgclfError:
                    raise
                except Exception as exc:  # noqa: BLE001  (a bad file never stops prediction)
                    self.skipped_.add(p, exc)
                    stacks.append(blank)
            out = self._probabilities(np.concatenate(stacks))
            out = out.reshape(len(paths), views, out.shape[-1]).mean(axis=1)
        else:
            data = image_dataset(
                paths,
                target_size=self.target_size,
                color_mode=self.color_mode,
                interpolation=self.interpolation,
                batch_size=self.batch_size,
                cache=False,
                skipped=self.skipped_,
            )
            out = self._probabilities(data)
        bad = [i for i, p in enumerate(paths) if p in self.skipped_]
        out[bad] = np.nan
        return out

    def _probabilities(self, data) -> np.ndarray:
        out = np.asarray(self.model_.predict(data, batch_size=self.batch_size, verbose=0), dtype=np.float32)
        if self.class_mode_ == "binary":
            out = np.concatenate([1.0 - out, out], axis=1)
        return out

    def predict(self, X, *, crop: tuple[int, int, int, int] | None = None, tta: bool = False) -> np.ndarray:
        """Predicted class names, array ``(n,)`` of str (``""`` for a file that cannot be decoded, listed in
        ``skipped_``); arguments as in :meth:`predict_proba`."""
        proba = self.predict_proba(X, crop=crop, tta=tta)
        labels = np.asarray(self.classes_, dtype=object)[np.nan_to_num(proba, nan=-1).argmax(axis=1)]
        labels[np.isnan(proba).any(axis=1)] = ""  # unreadable file: see skipped_
        return labels.astype(str)

    def evaluate(self, data: str | os.PathLike | Samples) -> dict:
        """Loss, accuracy, confusion matrix and per-class precision/recall/F1 on labelled images.

        Args:
            data: a folder (its test or validation split if it has split folders, else all of its
                class folders; see :func:`imgclf.data.folders.load_eval_samples`) or
                :class:`~imgclf.data.folders.Samples` labelled with ``classes_``.

        Returns:
            The dict of :func:`imgclf.evaluation.metrics.classification_metrics`.

        Raises:
            ImgclfError: not fitted, or the folder is unusable or has a class the model lacks.
        """
        self._check_fitted()
        from imgclf.evaluation.interpretation import Interpretation

        samples = data if isinstance(data, Samples) else load_eval_samples(data, self.classes_)
        return Interpretation.from_classifier(self, samples).metrics


def expand_image_paths(X) -> list[str]:
    """Turn a path or list of paths into image files: folders are searched recursively.

    Raises:
        ImgclfError: a path does not exist, or a folder holds no image files.
    """
    items = [X] if isinstance(X, (str, os.PathLike)) else list(X)
    paths: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise ImgclfError(f"folder {str(item)!r} holds no image files.")
            paths.extend(found)
        elif p.is_file():
            paths.append(os.fspath(p))
        else:
            raise ImgclfError(f"image path does not exist. Received: {str(item)!r}")
    return paths


def model_summary(model: keras.Model) -> str:
    """Plain-text summary of a model: one line per layer (name, type, output shape, parameters),
    then total, trainable and non-trainable parameter counts."""
    rows = [("Layer (type)", "Output shape", "Param #")]
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        shape = tuple(shape.shape) if shape is not None and hasattr(shape, "shape") else "?"
        rows.append((f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f'Model: "{model.name}"']
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = model.count_params()
    lines += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(lines) + "\n"


def _tf_version() -> str:
    import tensorflow as tf

    return tf.__version__


__all__ = ["ImageClassifier", "expand_image_paths", "model_summary"]
