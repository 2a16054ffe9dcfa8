"""The settings of an :class:`~imgclf.ImageClassifier`, checked and resolved: what ``fit`` works from.

Every value is checked against what its setting declares (:func:`imgclf.settings.check_setting`: choices and
intervals live with the setting, in :mod:`imgclf.settings`), then against the rules between settings, and the
registries check names (models, backbones, recipes, the tracker). Defaults that depend on other settings are
applied here (the model's own ``target_size`` and ``color_mode``, ``epochs`` after ``target_accuracy``). Errors
name the setting and the value received.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from types import SimpleNamespace

from imgclf.data.images import ImageParts, ImageSpec
from imgclf.errors import ImgclfError
from imgclf.models import get_model_spec, resolve_precision
from imgclf.pipeline.augment import make_augmentation
from imgclf.recipes import effective_settings, get_recipe
from imgclf.settings import check_setting, names

DEFAULT_MODEL = "course_small"
"""The model when neither ``model`` nor ``backbone`` is given: the course's cats-vs-dogs ConvNet."""
DEFAULT_EPOCHS = 15
"""Epochs when none are given (the course trains its cats-vs-dogs ConvNet for 15)."""
TARGET_MAX_EPOCHS = 100
"""Epochs when none are given but ``target_accuracy`` is: an upper bound, training stops at the target."""
ADAMW_WEIGHT_DECAY = 0.004
"""``keras.optimizers.AdamW``'s default weight decay, the one imgclf uses for ``adamw`` when none is given."""
BACKBONE_INTERPOLATION = "bilinear"
"""The resize filter of pretrained backbones: their ImageNet weights were trained on antialiased resizes. SqueezeNet
on cats vs dogs loses 2.7 points more with ``nearest`` on 128-px JPEG re-encodes of the validation images
(``bench/outside_images.py``), 7.6 on outside photos (issue 13)."""


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
    monitor: str = "accuracy"
    class_weight: str | dict | None = None
    tensorboard: bool = False
    fine_tune_from: str | None = None
    fine_tune_schedule: str = "cosine"
    seed: int = 0

    def to_record(self, class_mode: str) -> dict:
        """Every resolved setting as ``config.yaml`` records it under ``resolved:``, by its name, with the dataset's
        ``class_mode``: the image as ``target_size``, ``color_mode`` and ``interpolation``, the augmentation as what
        it changes, the recipe as ``{name, version}``, the head only with a backbone."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("image", "augment", "head", "recipe", "recipe_version")}  # fmt: skip
        record.update(target_size=list(self.target_size), color_mode=self.color_mode, class_mode=class_mode,
                      interpolation=self.interpolation, augment=self.augment.changes())  # fmt: skip
        if self.backbone is not None:
            record["head"] = self.head
        if self.recipe is not None:
            record["recipe"] = {"name": self.recipe, "version": self.recipe_version}
        return record


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
    values = effective_settings({name: getattr(given, name) for name in names()})
    settings = SimpleNamespace(**{name: check_setting(name, value) for name, value in values.items()})
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
    interpolation = default_interpolation if settings.interpolation is None else settings.interpolation
    if settings.label_smoothing and settings.class_mode == "sparse":
        raise ImgclfError(
            "label_smoothing needs class_mode binary, categorical or auto (Keras' sparse "
            f"crossentropy has none). Received: label_smoothing={settings.label_smoothing:g}, class_mode='sparse'"
        )
    if settings.reduce_lr is not None and (settings.lr_schedule != "constant" or settings.warmup_epochs):
        raise ImgclfError(
            "reduce_lr needs a constant learning rate to change: give lr_schedule='constant' and no "
            f"warmup_epochs. Received: lr_schedule={settings.lr_schedule!r}, warmup_epochs={settings.warmup_epochs:g}"
        )
    weight_decay = settings.weight_decay
    if weight_decay is None:
        weight_decay = ADAMW_WEIGHT_DECAY if settings.optimizer == "adamw" else None
    elif weight_decay == 0:
        weight_decay = None
    head = default_head if settings.head is None else settings.head
    augment = make_augmentation(settings.augment)
    if head == "prototypes":
        _check_prototypes(settings, augment)
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
    if settings.warmup_epochs >= epochs:
        raise ImgclfError(f"warmup_epochs must be fewer than epochs ({epochs}). Received: {settings.warmup_epochs:g}")
    weights = None if settings.weights is None or str(settings.weights).lower() == "none" else str(settings.weights)
    return Resolved(
        model=model,
        backbone=settings.backbone,
        image=ImageSpec(
            default_size if settings.target_size is None else settings.target_size,
            default_mode if settings.color_mode is None else settings.color_mode,
            interpolation,
        ),
        epochs=epochs,
        augment=augment,
        precision=resolve_precision(settings.precision, trains_backbone=_trains_backbone(settings)),
        weights=weights,
        weight_decay=weight_decay,
        head=head,
        recipe_version=get_recipe(settings.recipe).version if settings.recipe else None,
        **{name: getattr(settings, name) for name in _AS_GIVEN},
    )


_AS_GIVEN = ("batch_size", "learning_rate", "fine_tune", "fine_tune_epochs", "early_stopping", "reduce_lr",
             "target_accuracy", "dropout", "validation_split", "optimizer", "lr_schedule", "warmup_epochs",
             "label_smoothing", "recipe", "monitor", "class_weight", "tensorboard", "fine_tune_from",
             "fine_tune_schedule", "seed")  # fmt: skip
"""The settings :class:`Resolved` holds as checked, with nothing derived from others."""


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
