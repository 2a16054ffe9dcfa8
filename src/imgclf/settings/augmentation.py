"""The augmentation settings as command-line options: one per field of
:class:`imgclf.pipeline.augment.Augmentation`, declared here, where nothing heavy is imported, so ``--help`` stays
fast."""

from __future__ import annotations

from dataclasses import dataclass

#: The panel of the augmentation options in ``--help``.
AUGMENTATION_PANEL = "Augmentation (training images only; ImageDataGenerator's names and units)"


@dataclass(frozen=True)
class AugmentationOption:
    """One field of :class:`imgclf.pipeline.augment.Augmentation` as a command-line option (declared here, where
    nothing heavy is imported, so ``--help`` stays fast).

    Attributes:
        name: the field's name (``rotation_range``); the option is ``--rotation-range``.
        cli: the option's value type; ``str`` for a range given as ``X`` or ``LOW,HIGH``.
        help: the option's help.
        number: for a range, the type of its numbers (``float`` or ``int``); ``None`` otherwise.
    """

    name: str
    cli: type
    help: str
    number: type | None = None


#: Every augmentation field as an option, in ``Augmentation``'s order (``tests/cli/test_cli_augment.py`` checks it).
AUGMENTATION_OPTIONS = (
    AugmentationOption("rotation_range", float, "Degrees, random in [-r, r]."),
    AugmentationOption("width_shift_range", float, "Fraction of width (pixels if >= 1)."),
    AugmentationOption("height_shift_range", float, "Fraction of height (pixels if >= 1)."),
    AugmentationOption("shear_range", float, "Shear angle in degrees."),
    AugmentationOption("zoom_range", str, "Z (means 1-Z,1+Z) or LOW,HIGH.", float),
    AugmentationOption("horizontal_flip", bool, "Random left-right mirror."),
    AugmentationOption("vertical_flip", bool, "Random top-bottom mirror."),
    AugmentationOption("fill_mode", str, "nearest, reflect, wrap or constant."),
    AugmentationOption("cval", float, "Fill value for fill-mode constant."),
    AugmentationOption("brightness_range", str, "LOW,HIGH brightness factor.", float),
    AugmentationOption("channel_shift_range", float, "Add [-r, r] (0-255 scale)."),
    AugmentationOption("interpolation_order", int, "Warp: 1 bilinear (default), 0 nearest."),
    AugmentationOption(
        "downscale_range", str, "Shrink to a fraction of the size, then back: S (means S,1) or LOW,HIGH.", float
    ),  # fmt: skip
    AugmentationOption(
        "jpeg_quality_range", str, "Re-encode as JPEG at quality Q..100 (Q) or LOW..HIGH (LOW,HIGH).", int
    ),  # fmt: skip
)
