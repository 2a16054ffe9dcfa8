"""Every training setting, declared once.

:class:`Settings` is the single declaration: a field per setting with its default, its help and its CLI
panel. :class:`~imgclf.ImageClassifier` inherits its ``__init__`` from it (so the estimator's parameters *are*
these fields, and ``__init__`` only stores them, as scikit-learn requires); ``imgclf train`` builds one
option per field from it (:func:`cli_options`), with the help and default shown here; a run's ``config.yaml``
records them by these names. Each field declares what its value may be (:mod:`imgclf.settings.constraints`:
choices and intervals, as scikit-learn's ``_parameter_constraints``); :func:`imgclf.settings.resolved.resolve`
checks every value from those declarations, then the rules between settings, and derives the rest.

This module imports nothing heavy, so the command line's ``--help`` stays instant.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from imgclf.settings.augmentation import AUGMENTATION_OPTIONS, AUGMENTATION_PANEL, AugmentationOption
from imgclf.settings.choices import (
    ADAMW_WEIGHT_DECAY,
    CACHE_ALIASES,
    CACHE_MODES,
    CLASS_MODES,
    COLOR_MODES,
    DEFAULT_INTERPOLATION,
    DISTRIBUTE,
    FINE_TUNE_SCHEDULES,
    INTERPOLATIONS,
    LR_SCHEDULES,
    MONITORS,
    OOD_METHODS,
    OPTIMIZERS,
    PRECISIONS,
)
from imgclf.settings.constraints import AnyOf, Interval, Options, check_value
from imgclf.settings.help import describe_fields, shown_default

#: The default ``target_size`` ``(height, width)``: the course's 150x150 (its cats-vs-dogs ConvNets).
DEFAULT_TARGET_SIZE = (150, 150)
#: Heads a backbone can get (:func:`imgclf.models.transfer.add_head`).
HEADS = ("course", "gap", "prototypes")
#: The learning-rate range test's sweep (``imgclf lr-find``, ``ImageClassifier.lr_find``): first and last rate,
#: and at most this many batches (fastai's ``lr_find`` defaults; Smith 2017).
LR_FIND_START_LR, LR_FIND_END_LR, LR_FIND_STEPS = 1e-7, 10.0, 100
#: Panels of ``imgclf train --help``.
PANELS = ("Data", "Label tables", "Model", "Training", "Transfer learning", "Training control", "Calibration")


_NO_FALLBACK = object()


def _setting(default, help: str, panel: str, cli: type | None = None, shown: str | None = None,
             fallback=_NO_FALLBACK, constraint=None):  # fmt: skip
    """A field with its help text, CLI panel, CLI value type (default: the field's type without ``None``),
    how the default is shown in help (default: ``repr``-like) and what its value may be (``constraint``: an
    :class:`~imgclf.settings.constraints.Options`, ``Interval`` or ``AnyOf``; ``None``: checked where the value
    is used, e.g. a model name by the model registry).

    A setting whose ``default`` is ``None`` means "not given": a recipe (:mod:`imgclf.recipes`) may then set it,
    else ``fallback`` (when declared) or a value derived from other settings applies."""
    metadata = {"help": help, "panel": panel, "cli": cli, "shown": shown, "constraint": constraint}
    if fallback is not _NO_FALLBACK:
        metadata["fallback"] = fallback
    return field(default=default, metadata=metadata)


@dataclass(kw_only=True, eq=False, repr=False)
class Settings:
    """The settings of a training run (see each field's help in :func:`describe`)."""

    recipe: str | None = _setting(
        None,
        "A named, versioned set of settings (`imgclf recipes`), e.g. fast; settings given as well override it.",
        "Model",
    )
    model: str | None = _setting(
        None, "Model name (`imgclf models`); not with backbone.", "Model", shown="course_small"
    )
    backbone: str | None = _setting(
        None,
        "Pretrained backbone instead of model (`imgclf backbones`): transfer learning, frozen backbone + new head.",
        "Transfer learning",
    )
    target_size: tuple[int, int] | None = _setting(
        None,
        "Height and width in pixels images are resized to.",
        "Data",
        cli=tuple[int, int],
        shown="the model's, 150 150",
    )
    color_mode: str | None = _setting(
        None, "rgb or grayscale.", "Data", shown="the model's", constraint=Options(*COLOR_MODES)
    )
    interpolation: str | None = _setting(
        None,
        "Resize filter: nearest (Keras load_img's, so the course's), "
        "bilinear (antialiased), bicubic, lanczos, box, hamming.",
        "Data",
        shown="the model's: nearest for the course ConvNets, bilinear for backbones and the modern models",
        constraint=Options(*INTERPOLATIONS),
    )
    validation_split: float | None = _setting(
        None,
        "Fraction held out (stratified) when DATA has no validation folder; 0 trains without validation.",
        "Data",
        shown="0.2",
        constraint=Interval(float, 0, 1, "left"),
    )
    label_pattern: str | None = _setting(
        None,
        "Regex reading labels from flat file names like cat.123.jpg (group 'label' or the first group).",
        "Data",
        shown="<label>[._-]<digits>.<ext>",
    )
    label_column: str = _setting("label", "Label column of pixel CSVs.", "Data")
    group_by: str | None = _setting(None, "Regex giving each picture's group from its file name (its group 'group' "
                                    "or first group: (.*)_burst\\d+): each group in one split.", "Data", shown="none")
    # label tables (imgclf.data.tables), with the names of Keras' flow_from_dataframe and fastai's from_df
    images: str | None = _setting(None, "A label table's images folder (Keras' directory).", "Label tables",
                                  shown="the table's folder, then images/ or train_images/ beside it")  # fmt: skip
    x_col: str | None = _setting(None, "A label table's file column (Keras' x_col).", "Label tables",
                                 shown="the column whose values name images")  # fmt: skip
    y_col: str | None = _setting(None, "A label table's label column (Keras' y_col).", "Label tables",
                                 shown="the one other column, else one named label, class, target...")  # fmt: skip
    suffix: str | None = _setting(None, "Appended to a label table's file names (fastai's suff; a name without an "
                                  "extension also finds its one image).", "Label tables", shown="none")  # fmt: skip
    class_names: str | None = _setting(None, "JSON file mapping a table's labels to class names (cassava's "
                                       "label_num_to_disease_map.json).", "Label tables", shown="the labels")
    split_col: str | None = _setting(None, "A label table's split column: train / valid / validation / test, or "
                                     "booleans (true: held out, fastai's is_valid).", "Label tables", shown="none")
    group_col: str | None = _setting(None, "A label table's group column (a patient, a plant, a burst): each group "
                                     "in one split, stratified as far as groups allow (StratifiedGroupKFold).",
                                     "Label tables", shown="none")  # fmt: skip
    cache: str | bool = _setting(
        "auto",
        "Where decoded images are kept between epochs: memory, disk (a cache file in the run folder, removed after "
        "training), none (decoded every epoch), or auto (memory if they fit in half the available memory, else "
        "disk, else none).",
        "Data",
        cli=str,
        constraint=Options(*CACHE_MODES, aliases=CACHE_ALIASES),
    )
    augment: str | dict | None = _setting(
        None,
        "Augmentation of training images: a preset (course, none) or "
        "a mapping of ImageDataGenerator settings (rotation_range, ...).",
        "Data",
        cli=str,
        shown="none",
    )
    batch_size: int | None = _setting(
        None, "Images per batch.", "Training", fallback=20, constraint=Interval(int, 1, None)
    )
    epochs: int | None = _setting(
        None,
        "Passes over the training images (an upper bound when a callback stops early).",
        "Training",
        shown="15; 100 with target_accuracy, which stops earlier",
        constraint=Interval(int, 1, None),
    )
    optimizer: str | None = _setting(
        None, "rmsprop, adam, adamw or sgd.", "Training", fallback="rmsprop", constraint=Options(*OPTIMIZERS)
    )
    learning_rate: float | None = _setting(
        None, "Optimizer learning rate (the peak rate with a warm-up or a schedule).", "Training", fallback=1e-3,
        constraint=Interval(float, 0, None, "neither"),
    )
    weight_decay: float | None = _setting(
        None,
        "Decoupled weight decay, any optimizer: each step w -= learning_rate * weight_decay * w (Loshchilov & "
        "Hutter 2019; Keras' weight_decay).",
        "Training",
        shown="0.004 for adamw (Keras' default), else off",
        constraint=Interval(float, 0, 1, "left"),
    )
    lr_schedule: str | None = _setting(
        None,
        "Learning rate over the training steps: constant, or cosine (annealed to 0 by the last step along a half "
        "cosine, Loshchilov & Hutter 2017; Keras' CosineDecay).",
        "Training",
        fallback="constant",
        constraint=Options(*LR_SCHEDULES),
    )
    warmup_epochs: float | None = _setting(
        None,
        "Epochs over which the learning rate first rises linearly from learning_rate/10 to learning_rate "
        "(Goyal et al. 2017); with cosine, a one-cycle-like schedule.",
        "Training",
        fallback=0.0,
        constraint=Interval(float, 0, None, "left"),
    )
    label_smoothing: float | None = _setting(
        None,
        "Mix this much of the uniform distribution into the training targets (Szegedy et al. 2016): binary "
        "targets become 0.05 and 0.95 with 0.1.",
        "Training",
        fallback=0.0,
        constraint=Interval(float, 0, 1, "left"),
    )
    class_mode: str = _setting(
        "auto", "auto (binary for 2 classes, else categorical), binary, categorical or sparse.", "Training",
        constraint=Options(*CLASS_MODES),
    )
    precision: str = _setting(
        "auto",
        "auto (mixed_bfloat16 where the CPU has AMX/AVX512-BF16 and the convolutions train; float32 for a frozen "
        "backbone and elsewhere), mixed_bfloat16 or float32. Training only: the saved model is float32.",
        "Training",
        constraint=Options(*PRECISIONS),
    )
    seed: int = _setting(
        0, "Seed of weight initialisation, validation split, shuffling, augmentation and dropout.", "Training",
        constraint=Interval(int, 0, None),
    )
    distribute: str = _setting(
        "none",
        "none, mirrored (every local GPU; two logical CPU devices without one) or multi-worker (the machines "
        "TF_CONFIG lists; imgclf train --workers writes it). batch_size is the global batch, split over them.",
        "Training",
        constraint=Options(*DISTRIBUTE),
    )
    weights: str | None = _setting(
        "imagenet",
        "Backbone weights: imagenet (cached download), a local .h5 file, or none.",
        "Transfer learning",
        cli=str,
    )
    cut_layer: str | None = _setting(
        None, "Backbone layer feeding the head.", "Transfer learning", shown="the backbone's, mixed7 for inception_v3"
    )
    head: str | None = _setting(
        None,
        "course (Flatten, Dense 1024, Dropout), gap (global average pooling, Dropout) or prototypes (few-shot: each "
        "class the mean of its images' features, no gradient training, one pass).",
        "Transfer learning",
        shown="the backbone's (`imgclf backbones`): course for inception_v3, as in the course; gap for the others",
        constraint=Options(*HEADS),
    )
    dropout: float = _setting(
        0.2, "Dropout rate of the head.", "Transfer learning", constraint=Interval(float, 0, 1, "left")
    )
    fine_tune: int | None = _setting(
        None,
        "Then unfreeze the top N backbone layers with weights and train on at "
        "learning_rate/10 (BatchNormalization stays frozen).",
        "Transfer learning",
        constraint=Interval(int, 1, None),
    )
    fine_tune_from: str | None = _setting(
        None, "Then unfreeze every backbone layer from this one on, at learning_rate/10.", "Transfer learning"
    )
    fine_tune_epochs: int | None = _setting(
        None, "Epochs of the fine-tuning phase.", "Transfer learning", shown="epochs",
        constraint=Interval(int, 1, None),
    )
    fine_tune_schedule: str = _setting(
        "cosine",
        "Fine-tuning learning rate: cosine (learning_rate/10 annealed to 0 by the last step) or constant.",
        "Transfer learning",
        constraint=Options(*FINE_TUNE_SCHEDULES),
    )
    cache_features: bool = _setting(
        True,
        "Frozen backbone, no augmentation: run the backbone once and train the head on its stored outputs.",
        "Transfer learning",
        constraint=AnyOf(bool),
    )
    target_accuracy: float | None = _setting(
        None,
        "Stop once monitor reaches this at the end of an epoch (the course's myCallback), e.g. 0.999.",
        "Training control",
        constraint=Interval(float, 0, 1, "right"),
    )
    monitor: str = _setting(
        "accuracy", "accuracy (training, as in the course) or val_accuracy, for target_accuracy.", "Training control",
        constraint=Options(*MONITORS),
    )
    early_stopping: int | None = _setting(
        None, "Stop after this many epochs without a better validation loss.", "Training control",
        constraint=Interval(int, 1, None),
    )
    reduce_lr: int | None = _setting(
        None,
        "Divide the learning rate by 5 after this many epochs without a better validation loss.",
        "Training control",
        constraint=Interval(int, 1, None),
    )
    class_weight: str | dict | None = _setting(
        None,
        "balanced (scikit-learn's inverse-frequency weights) or a mapping {class_index: weight}.",
        "Training control",
        cli=str,
        constraint=AnyOf(Options("balanced"), dict),
    )
    tensorboard: bool = _setting(
        False, "Write TensorBoard logs into RUN/tensorboard (needs the tensorboard extra).", "Training control",
        constraint=AnyOf(bool),
    )
    track: str | None = _setting(
        None,
        "Log the run to an experiment tracker: mlflow (MLflow's default store, sqlite:///mlflow.db here) or "
        "mlflow:URI — settings, every epoch's metrics, final figures, the model (Keras flavour), report and plots "
        "(needs the mlflow extra).",
        "Training control",
    )
    calibrate: bool = _setting(
        True,
        "After training, fit a temperature (calibrated probabilities) and an out-of-distribution detector "
        "(an 'unknown' answer) on the validation images.",
        "Calibration",
        constraint=AnyOf(bool),
    )
    ood_method: str = _setting(
        "knn",
        "What decides 'unknown': knn (distance to the k-th nearest training image's features), mahalanobis, "
        "energy or msp (maximum softmax probability).",
        "Calibration",
        constraint=Options(*OOD_METHODS),
    )
    ood_false_alarm_rate: float = _setting(
        0.05, "Share of images like the validation images that are called unknown (sets the threshold).", "Calibration",
        constraint=Interval(float, 0, 1, "neither"),
    )


def fields() -> tuple[dataclasses.Field, ...]:
    """The declared settings, in declaration order."""
    return dataclasses.fields(Settings)


def names() -> list[str]:
    """The setting names, in declaration order."""
    return [f.name for f in fields()]


def defaults() -> dict[str, Any]:
    """``{name: default}`` of every setting."""
    return {f.name: f.default for f in fields()}


@functools.cache
def _by_name() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in fields()}  # once: check_setting runs wherever a value is checked


def constraint(name: str):
    """What the setting ``name`` may be (its declared constraint, or ``None``).

    Raises:
        KeyError: no setting ``name``.
    """
    return _by_name()[name].metadata["constraint"]


def check_setting(name: str, value):
    """``value`` as the setting ``name`` holds it, checked against its declared constraint; ``None`` passes for a
    setting whose default is ``None`` (= not given).

    Raises:
        ImgclfError: ``value`` is not what ``name`` allows, e.g. ``dropout must be a number in [0, 1). Received:
            1.5``.
    """
    f = _by_name()[name]
    return check_value(name, value, f.metadata["constraint"], none_allowed=f.default is None)


def recipe_settable() -> list[str]:
    """The settings a recipe may set: those whose default is ``None`` (= not given), but ``recipe`` itself."""
    return [f.name for f in fields() if f.default is None and f.name != "recipe"]


def fallbacks() -> dict[str, Any]:
    """``{name: value}`` of the settings that fall back to a fixed value when neither given nor set by a recipe."""
    return {f.name: f.metadata["fallback"] for f in fields() if "fallback" in f.metadata}


def describe(indent: str = "        ") -> str:
    """The settings as the estimator docstring's ``Args:`` entries (:func:`imgclf.settings.help.describe_fields`)."""
    return describe_fields(fields(), indent)


__all__ = [
    "Settings", "PANELS", "fields", "names", "defaults", "shown_default", "describe", "recipe_settable",
    "fallbacks", "constraint", "check_setting", "AUGMENTATION_OPTIONS", "AUGMENTATION_PANEL", "AugmentationOption",
    "ADAMW_WEIGHT_DECAY", "CACHE_ALIASES", "CACHE_MODES", "CLASS_MODES", "COLOR_MODES", "DEFAULT_INTERPOLATION",
    "DISTRIBUTE", "FINE_TUNE_SCHEDULES", "INTERPOLATIONS", "LR_SCHEDULES", "MONITORS", "OOD_METHODS", "OPTIMIZERS",
    "PRECISIONS",
]
