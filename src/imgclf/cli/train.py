"""Commands that train: ``train`` and ``demo``; the augmentation options ``preview`` shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgclf.cli._common import app, describe_data, err, finish_run, load_api, print_metrics

_AUG = "Augmentation (training images only; ImageDataGenerator's names and units)"


def parse_range(text: str | None):
    """``"0.2"`` → 0.2; ``"0.8,1.2"`` → [0.8, 1.2]; ``None`` stays ``None``."""
    if text is None:
        return None
    from imgclf.errors import ImgclfError

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ImgclfError(f"expected a number or LOW,HIGH. Received: {text!r}") from None
    if len(values) > 2:
        raise ImgclfError(f"expected a number or LOW,HIGH. Received: {text!r}")
    return values[0] if len(values) == 1 else values


Augment = Annotated[str | None, typer.Option(help="Preset: course or none.", rich_help_panel=_AUG)]
Rotation = Annotated[float | None, typer.Option(help="Degrees, random in [-r, r].", rich_help_panel=_AUG)]
WidthShift = Annotated[float | None, typer.Option(help="Fraction of width (pixels if >= 1).", rich_help_panel=_AUG)]
HeightShift = Annotated[float | None, typer.Option(help="Fraction of height (pixels if >= 1).", rich_help_panel=_AUG)]
Shear = Annotated[float | None, typer.Option(help="Shear angle in degrees.", rich_help_panel=_AUG)]
Zoom = Annotated[str | None, typer.Option(help="Z (means 1-Z,1+Z) or LOW,HIGH.", rich_help_panel=_AUG)]
HFlip = Annotated[bool | None, typer.Option(help="Random left-right mirror.", rich_help_panel=_AUG)]
VFlip = Annotated[bool | None, typer.Option(help="Random top-bottom mirror.", rich_help_panel=_AUG)]
FillMode = Annotated[str | None, typer.Option(help="nearest, reflect, wrap or constant.", rich_help_panel=_AUG)]
Cval = Annotated[float | None, typer.Option(help="Fill value for fill-mode constant.", rich_help_panel=_AUG)]
Brightness = Annotated[str | None, typer.Option(help="LOW,HIGH brightness factor.", rich_help_panel=_AUG)]
ChannelShift = Annotated[float | None, typer.Option(help="Add [-r, r] (0-255 scale).", rich_help_panel=_AUG)]
InterpolationOrder = Annotated[
    int | None, typer.Option(help="Warp: 1 bilinear (default), 0 nearest.", rich_help_panel=_AUG)
]


#: The augmentation flags every command that augments takes (Augmentation field names).
AUG_FLAGS = (
    "rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range", "horizontal_flip",
    "vertical_flip", "fill_mode", "cval", "brightness_range", "channel_shift_range", "interpolation_order",
)  # fmt: skip


def augmentation_from_options(base, **flags):
    """An ``Augmentation`` from a preset/config value plus the CLI flags that were given."""
    from imgclf.pipeline.augment import make_augmentation

    flags["zoom_range"] = parse_range(flags.get("zoom_range"))
    flags["brightness_range"] = parse_range(flags.get("brightness_range"))
    return make_augmentation(base, **flags)


@app.command()
def train(
    data: Annotated[str | None, typer.Argument(help="Folder (DATA/train/<class>/ + DATA/validation/<class>/, or DATA/<class>/) or a named dataset (`imgclf datasets list`) (default: the config's data)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings (a run's config.yaml works); flags override it.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (`imgclf models`) (default: course_small).")] = None,
    target_size: Annotated[tuple[int, int] | None, typer.Option(help="Height and width in pixels (default: the model's, 150 150).")] = None,
    color_mode: Annotated[str | None, typer.Option(help="rgb or grayscale (default: the model's).")] = None,
    interpolation: Annotated[str | None, typer.Option(help="Resize filter: nearest, bilinear, bicubic, lanczos, box, hamming (default: nearest).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per batch (default: 20).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training images (default: 15; 100 with --target-accuracy, which stops earlier).")] = None,
    optimizer: Annotated[str | None, typer.Option(help="rmsprop, adam or sgd (default: rmsprop).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Optimizer learning rate (default: 1e-3).")] = None,
    class_mode: Annotated[str | None, typer.Option(help="auto, binary, categorical or sparse (default: auto).")] = None,
    validation_split: Annotated[float | None, typer.Option(help="Fraction held out when DATA has no validation folder (default: 0.2).")] = None,
    backbone: Annotated[str | None, typer.Option(help="Pretrained backbone instead of --model (`imgclf backbones`): transfer learning.", rich_help_panel="Transfer learning")] = None,
    weights: Annotated[str | None, typer.Option(help="Backbone weights: imagenet (cached download), a local .h5 file, or none (default: imagenet).", rich_help_panel="Transfer learning")] = None,
    cut_layer: Annotated[str | None, typer.Option(help="Backbone layer feeding the head (default: the backbone's, mixed7 for inception_v3).", rich_help_panel="Transfer learning")] = None,
    head: Annotated[str | None, typer.Option(help="course (Flatten, Dense 1024, Dropout) or gap (global average pooling, Dropout) (default: course).", rich_help_panel="Transfer learning")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout rate of the head (default: 0.2).", rich_help_panel="Transfer learning")] = None,
    fine_tune: Annotated[int | None, typer.Option(help="Then unfreeze the top N backbone layers and train on at lr/10.", rich_help_panel="Transfer learning")] = None,
    fine_tune_from: Annotated[str | None, typer.Option(help="Then unfreeze every backbone layer from LAYER on, at lr/10.", rich_help_panel="Transfer learning")] = None,
    fine_tune_epochs: Annotated[int | None, typer.Option(help="Epochs of the fine-tuning phase (default: --epochs).", rich_help_panel="Transfer learning")] = None,
    fine_tune_schedule: Annotated[str | None, typer.Option(help="Fine-tuning learning rate: cosine (lr/10 annealed to 0, default) or constant (lr/10).", rich_help_panel="Transfer learning")] = None,
    cache_features: Annotated[bool | None, typer.Option(help="Frozen backbone, no augmentation: run the backbone once and train the head on its outputs (default: on).", rich_help_panel="Transfer learning")] = None,
    target_accuracy: Annotated[float | None, typer.Option(help="Stop once --monitor reaches this (the course's myCallback), e.g. 0.999.", rich_help_panel="Training control")] = None,
    monitor: Annotated[str | None, typer.Option(help="accuracy (default) or val_accuracy, for --target-accuracy.", rich_help_panel="Training control")] = None,
    early_stopping: Annotated[int | None, typer.Option(help="Stop after this many epochs without a better validation loss.", rich_help_panel="Training control")] = None,
    class_weight: Annotated[str | None, typer.Option(help="balanced: weight classes by inverse frequency.", rich_help_panel="Training control")] = None,
    reduce_lr: Annotated[int | None, typer.Option(help="Divide the learning rate by 5 after this many epochs without a better validation loss.", rich_help_panel="Training control")] = None,
    tensorboard: Annotated[bool | None, typer.Option(help="Write TensorBoard logs into RUN/tensorboard.", rich_help_panel="Training control")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this killed or interrupted run from its last completed epoch.", rich_help_panel="Training control")] = None,
    precision: Annotated[str | None, typer.Option(help="float32, mixed_bfloat16 (faster on CPUs with AMX/AVX512-BF16) or auto (default: float32).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for weights, split, shuffling and augmentation (default: 0).")] = None,
    augment: Augment = None,
    rotation_range: Rotation = None,
    width_shift_range: WidthShift = None,
    height_shift_range: HeightShift = None,
    shear_range: Shear = None,
    zoom_range: Zoom = None,
    horizontal_flip: HFlip = None,
    vertical_flip: VFlip = None,
    fill_mode: FillMode = None,
    cval: Cval = None,
    brightness_range: Brightness = None,
    channel_shift_range: ChannelShift = None,
    interpolation_order: InterpolationOrder = None,
    label_pattern: Annotated[str | None, typer.Option(help="Regex reading labels from flat file names like cat.123.jpg (group 'label' or the first group).")] = None,
    label_column: Annotated[str | None, typer.Option(help="Label column of pixel CSVs (default: label).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: <model>-<date>-<time>).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds run folders.")] = Path("runs"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder of the same name.")] = False,
):  # fmt: skip
    """Train a model on a folder of images and write runs/<name>/."""
    flags = locals()
    imgclf = load_api()
    from imgclf.errors import ImgclfError
    from imgclf.training.run import new_run_dir, read_train_config

    if resume is not None:
        from imgclf.training.trainer import resume as resume_run

        err.print(f"Resuming {resume}")
        finish_run(resume_run(resume), resume)
        return

    allowed = list(imgclf.ImageClassifier().get_params())
    settings, config_data = read_train_config(config, allowed) if config is not None else ({}, None)
    given = dict(
        model=model, target_size=target_size, color_mode=color_mode, interpolation=interpolation,
        batch_size=batch_size, epochs=epochs, optimizer=optimizer, learning_rate=learning_rate,
        class_mode=class_mode, validation_split=validation_split, seed=seed, precision=precision,
        target_accuracy=target_accuracy, monitor=monitor, early_stopping=early_stopping, class_weight=class_weight,
        reduce_lr=reduce_lr, tensorboard=tensorboard, backbone=backbone, weights=weights, cut_layer=cut_layer,
        head=head, dropout=dropout, fine_tune=fine_tune, fine_tune_from=fine_tune_from,
        fine_tune_epochs=fine_tune_epochs, fine_tune_schedule=fine_tune_schedule, cache_features=cache_features,
    )  # fmt: skip
    settings.update({k: v for k, v in given.items() if v is not None})
    if settings.get("target_size") is not None:
        settings["target_size"] = tuple(settings["target_size"])
    base = augment if augment is not None else settings.get("augment")
    settings["augment"] = augmentation_from_options(base, **{k: flags[k] for k in AUG_FLAGS})
    data = data if data is not None else config_data
    if data is None:
        raise ImgclfError("DATA is missing: give a dataset folder, or a --config that names one (data: PATH).")
    clf = imgclf.ImageClassifier(**settings)
    from imgclf.data.datasets import resolve
    from imgclf.data.folders import DEFAULT_LABEL_PATTERN

    data = resolve(data)  # a folder, or a named dataset (downloaded into the cache if needed)
    dataset = imgclf.load_folder(
        data, clf.validation_split, clf.seed, label_pattern or DEFAULT_LABEL_PATTERN, label_column or "label"
    )
    describe_data(dataset)
    if not clf.augment.is_identity:
        shown = ", ".join(f"{k}={v}" for k, v in clf.augment.changes().items())
        err.print(f"Augmenting training images: {shown}")
    run = new_run_dir(runs_dir, name, overwrite, prefix=clf.backbone or clf.model)
    clf.fit(dataset, run_dir=run)
    finish_run(clf, run)


@app.command()
def demo(
    epochs: Annotated[int, typer.Option(help="Passes over the training images.")] = 10,
    name: Annotated[str | None, typer.Option(help="Run name (default: demo-<date>-<time>).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds run folders.")] = Path("runs"),
):
    """Train on the built-in handwritten digits (offline), then evaluate: a complete run folder in under a minute."""
    imgclf = load_api()
    from imgclf._io import read_json
    from imgclf.data.demo import write_digits
    from imgclf.training.run import METRICS_FILE, new_run_dir

    root = write_digits()
    err.print(f"Digits dataset (scikit-learn, 8x8 PNGs): {root}")
    clf = imgclf.ImageClassifier(
        "course_28", target_size=(28, 28), color_mode="grayscale", batch_size=32, epochs=epochs, validation_split=0.2
    )
    dataset = imgclf.load_folder(root, clf.validation_split, clf.seed)
    describe_data(dataset)
    run = new_run_dir(runs_dir, name, prefix="demo")
    clf.fit(dataset, run_dir=run)
    finish_run(clf, run)  # evaluates on the held-out digits and writes the report
    print_metrics(read_json(run / METRICS_FILE))
