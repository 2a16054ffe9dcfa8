"""The settings of an :class:`~imgclf.ImageClassifier`, checked and resolved: what ``fit`` works from.

Defaults that depend on other settings are applied here (the model's own ``target_size`` and ``color_mode``,
``epochs`` after ``target_accuracy``), and every value is checked with an error that names the setting and
the value received.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from imgclf.data.folders import check_validation_split
from imgclf.data.images import ImageParts, ImageSpec, check_interpolation
from imgclf.errors import ImgclfError, check_one_of, check_positive_int
from imgclf.models import get_model_spec, resolve_precision
from imgclf.pipeline.augment import make_augmentation
from imgclf.pipeline.tfdata import check_cache, check_class_mode
from imgclf.recipes import effective_settings, get_recipe
from imgclf.settings import HEADS, names
from imgclf.training.distributed.cluster import check_distribute
from imgclf.training.optimizers import LR_SCHEDULES, check_learning_rate, check_optimizer, default_weight_decay
from imgclf.unknown.detector import METHODS

DEFAULT_MODEL = "course_small"
"""The model when neither ``model`` nor ``backbone`` is given: the course's cats-vs-dogs ConvNet."""
DEFAULT_EPOCHS = 15
"""Epochs when none are given (the course trains its cats-vs-dogs ConvNet for 15)."""
TARGET_MAX_EPOCHS = 100
"""Epochs when none are given but ``target_accuracy`` is: an upper bound, training stops at the target."""
FINE_TUNE_SCHEDULES = ("cosine", "constant")
"""Learning-rate schedules of the fine-tuning phase."""
BACKBONE_INTERPOLATION = "bilinear"
"""The resize filter of pretrained backbones: their ImageNet weights were trained on antialiased resizes. SqueezeNet
on cats vs dogs loses 2.7 points more with ``nearest`` on 128-px JPEG re-encodes of the validation images
(``bench/outside_images.py``), 7.6 on outside photos (issue 13)."""


def _optional(check, name: str, value):
    return None if value is None else check(name, value)


def _fraction(name: str, value, low_open: bool = True) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    ok = ok and ((0 < value <= 1) if low_open else (0 <= value < 1))
    if not ok:
        raise ImgclfError(f"{name} must be a float in {'(0, 1]' if low_open else '[0, 1)'}. Received: {value!r}")
    return float(value)


@dataclass(frozen=True)
class Resolved(ImageParts):
    """The settings of an :class:`~imgclf.ImageClassifier`, checked, with every default applied."""

    model: str | None
    backbone: str | None
    image: ImageSpec
    epochs: int
    augment: object
    precision: str
    batch_size: int
    learning_rate: float
    weights: str | None
    fine_tune: int | None
    fine_tune_epochs: int | None
    early_stopping: int | None
    reduce_lr: int | None
    target_accuracy: float | None
    dropout: float
    validation_split: float | None
    optimizer: str = "rmsprop"
    weight_decay: float | None = None
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    head: str = "course"
    recipe: str | None = None
    recipe_version: int | None = None


def _non_negative(name: str, value, below: float = float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < below):
        raise ImgclfError(f"{name} must be a number in [0, {below:g}). Received: {value!r}")
    return float(value)


def _trains_backbone(settings) -> bool:
    """False for a frozen pretrained backbone: only its head learns (``auto`` precision is float32 there)."""
    return settings.backbone is None or settings.fine_tune is not None or settings.fine_tune_from is not None


def resolve(given) -> Resolved:
    """Check every setting of ``given`` (an :class:`imgclf.settings.Settings`) and apply, for those not given,
    its recipe's values (:func:`imgclf.recipes.effective_settings`), the declared fallbacks and the defaults that
    depend on other settings (the model's ``target_size``, ``color_mode`` and ``interpolation``).

    Returns:
        A :class:`Resolved`.

    Raises:
        ImgclfError: a setting out of range, an unknown recipe, ``model`` together with ``backbone``, fine-tuning
            without a backbone, ``tensorboard`` without the TensorBoard package, ``reduce_lr`` with a learning-rate
            schedule, or ``label_smoothing`` with ``class_mode="sparse"``.
    """
    settings = SimpleNamespace(**effective_settings({name: getattr(given, name) for name in names()}))
    if settings.model is not None and settings.backbone is not None:
        raise ImgclfError(
            f"give model or backbone, not both. Received: model={settings.model!r}, backbone={settings.backbone!r}"
        )
    if settings.backbone is not None:
        from imgclf.models.backbones import get_backbone

        spec = get_backbone(settings.backbone)
        default_size, default_mode, default_head = spec.default_size, "rgb", spec.default_head
        default_interpolation, model = BACKBONE_INTERPOLATION, None
    else:
        model = settings.model or DEFAULT_MODEL
        spec = get_model_spec(model)
        default_size, default_mode = spec.default_target_size, spec.default_color_mode
        default_interpolation, default_head = spec.default_interpolation, "course"  # no head without a backbone
    chosen = settings.interpolation
    interpolation = check_interpolation(default_interpolation if chosen is None else chosen)
    check_optimizer(settings.optimizer)
    check_one_of("lr_schedule", settings.lr_schedule, LR_SCHEDULES)
    warmup = _non_negative("warmup_epochs", settings.warmup_epochs)
    smoothing = _non_negative("label_smoothing", settings.label_smoothing, below=1)
    if smoothing and settings.class_mode == "sparse":
        raise ImgclfError(
            "label_smoothing needs class_mode binary, categorical or auto (Keras' sparse "
            f"crossentropy has none). Received: label_smoothing={smoothing:g}, class_mode='sparse'"
        )
    if settings.reduce_lr is not None and (settings.lr_schedule != "constant" or warmup):
        raise ImgclfError(
            "reduce_lr needs a constant learning rate to change: give lr_schedule='constant' and no "
            f"warmup_epochs. Received: lr_schedule={settings.lr_schedule!r}, warmup_epochs={warmup:g}"
        )
    weight_decay = settings.weight_decay
    if weight_decay is None:
        weight_decay = default_weight_decay(settings.optimizer)
    elif weight_decay == 0:
        weight_decay = None
    else:
        weight_decay = _non_negative("weight_decay", weight_decay, below=1)
    check_class_mode(settings.class_mode)
    check_one_of("monitor", settings.monitor, ("accuracy", "val_accuracy"))
    head = check_one_of("head", default_head if settings.head is None else settings.head, HEADS)
    augment = make_augmentation(settings.augment)
    if head == "prototypes":
        _check_prototypes(settings, augment)
    check_one_of("fine_tune_schedule", settings.fine_tune_schedule, FINE_TUNE_SCHEDULES)
    check_cache(settings.cache)
    check_distribute(settings.distribute)
    check_one_of("ood_method", settings.ood_method, METHODS)
    if _fraction("ood_false_alarm_rate", settings.ood_false_alarm_rate) == 1:
        raise ImgclfError("ood_false_alarm_rate must be below 1 (1 would call every image unknown). Received: 1")
    if isinstance(settings.seed, bool) or not isinstance(settings.seed, (int, np.integer)) or settings.seed < 0:
        raise ImgclfError(f"seed must be a non-negative int. Received: {settings.seed!r}")
    if settings.class_weight not in (None, "balanced") and not isinstance(settings.class_weight, dict):
        raise ImgclfError(f"class_weight must be None, 'balanced' or a dict. Received: {settings.class_weight!r}")
    if settings.backbone is None and settings.weights not in (None, "imagenet", "none"):
        raise ImgclfError(f"weights apply to a backbone: give backbone too. Received: weights={settings.weights!r}")
    if (settings.fine_tune is not None or settings.fine_tune_from is not None) and settings.backbone is None:
        raise ImgclfError("fine_tune / fine_tune_from need a backbone (backbone='inception_v3', ...).")
    if settings.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ImgclfError("tensorboard=True needs the TensorBoard package: pip install 'imgclf[tensorboard]'.")
    if settings.track is not None:
        from imgclf.runs.tracking import parse_track

        parse_track(settings.track)  # a bad value or a missing package fails before anything is written
    epochs = 1 if head == "prototypes" else settings.epochs  # one pass: the class means
    if epochs is None:
        epochs = DEFAULT_EPOCHS if settings.target_accuracy is None else TARGET_MAX_EPOCHS
    if warmup >= check_positive_int("epochs", epochs):
        raise ImgclfError(f"warmup_epochs must be fewer than epochs ({epochs}). Received: {warmup:g}")
    weights = None if settings.weights is None or str(settings.weights).lower() == "none" else str(settings.weights)
    return Resolved(
        model=model,
        backbone=settings.backbone,
        image=ImageSpec(
            default_size if settings.target_size is None else settings.target_size,
            default_mode if settings.color_mode is None else settings.color_mode,
            interpolation,
        ),
        epochs=check_positive_int("epochs", epochs),
        augment=augment,
        precision=resolve_precision(settings.precision, trains_backbone=_trains_backbone(settings)),
        batch_size=check_positive_int("batch_size", settings.batch_size),
        learning_rate=check_learning_rate(settings.learning_rate),
        weights=weights,
        fine_tune=_optional(check_positive_int, "fine_tune", settings.fine_tune),
        fine_tune_epochs=_optional(check_positive_int, "fine_tune_epochs", settings.fine_tune_epochs),
        early_stopping=_optional(check_positive_int, "early_stopping", settings.early_stopping),
        reduce_lr=_optional(check_positive_int, "reduce_lr", settings.reduce_lr),
        target_accuracy=_optional(_fraction, "target_accuracy", settings.target_accuracy),
        dropout=_fraction("dropout", settings.dropout, low_open=False),
        validation_split=check_validation_split(settings.validation_split),
        optimizer=settings.optimizer,
        weight_decay=weight_decay,
        lr_schedule=settings.lr_schedule,
        warmup_epochs=warmup,
        label_smoothing=smoothing,
        head=head,
        recipe=settings.recipe,
        recipe_version=get_recipe(settings.recipe).version if settings.recipe else None,
    )


def _check_prototypes(settings, augment) -> None:
    """The few-shot head averages a frozen backbone's features of the images as they are, in one pass."""
    if settings.backbone is None:
        raise ImgclfError("head='prototypes' needs a pretrained backbone (backbone='squeezenet1_1', ...).")
    if not augment.is_identity:
        raise ImgclfError("head='prototypes' averages the images as they are: give no augmentation. "
                          f"Received: augment={settings.augment!r}")  # fmt: skip
    if settings.fine_tune is not None or settings.fine_tune_from is not None or settings.distribute != "none":
        raise ImgclfError("head='prototypes' trains nothing by gradient: no fine_tune, fine_tune_from or distribute.")
    if not settings.cache_features:
        raise ImgclfError("head='prototypes' is computed from the backbone's features: keep cache_features on.")
