"""Commands about data, models and recipes: ``preview``, ``models``, ``recipes`` and ``split``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from imgclf.cli._common import app, err, load_api, out
from imgclf.cli._settings import AUG_FLAGS, with_augmentation_options, with_these_settings_options
from imgclf.cli.train import augmentation_from_options
from imgclf.settings import AUGMENTATION_PANEL, DEFAULT_INTERPOLATION, DEFAULT_TARGET_SIZE


@app.command()
@with_augmentation_options
def preview(
    data: Annotated[Path, typer.Argument(help="Dataset folder (as for `imgclf train`).")],
    image: Annotated[Path | None, typer.Option(help="Image to augment (default: the first training image).")] = None,
    out_path: Annotated[Path, typer.Option("--out", help="PNG of the augmented copies; the batch goes to <stem>-batch.png.")] = Path("preview.png"),
    count: Annotated[int, typer.Option(help="Number of augmented copies and batch size.")] = 16,
    target_size: Annotated[tuple[int, int], typer.Option(help="Height and width in pixels.")] = DEFAULT_TARGET_SIZE,
    seed: Annotated[int, typer.Option(help="Seed of the random augmentations and shuffling.")] = 0,
    augment: Annotated[str | None, typer.Option(help="Preset: course or none.", rich_help_panel=AUGMENTATION_PANEL)] = "course",
    **flags,
):  # fmt: skip
    """Draw one image under random augmentations, and a training batch with its labels."""
    imgclf = load_api()
    from imgclf.data.images import ImageSpec
    from imgclf.pipeline.preview import augmented_copies, save_grid, training_batch

    aug = augmentation_from_options(augment, **{k: flags.get(k) for k in AUG_FLAGS})
    spec = ImageSpec(target_size)
    dataset = imgclf.load_folder(data, validation_split=0, seed=seed)
    source = image if image is not None else dataset.train.paths[0]
    copies = augmented_copies(source, aug, count=count, image=spec, seed=seed)
    save_grid(copies, out_path, title=f"{Path(source).name}: {count} random augmentations")
    images, labels = training_batch(dataset.train, aug, count=count, image=spec, seed=seed)
    batch_path = out_path.with_name(f"{out_path.stem}-batch{out_path.suffix or '.png'}")
    save_grid(images, batch_path, titles=[dataset.class_names[i] for i in labels], title="A training batch")
    err.print(f"Augmentation: {aug.changes() or 'none'}")
    print(f"{out_path}\n{batch_path}")


@app.command()
def models():
    """List the registered models."""
    load_api()
    from imgclf.models import count_parameters, get_model_spec, list_models

    table = Table("name", "input", "resize", "parameters", "description")
    for name in list_models():
        spec = get_model_spec(name)
        h, w = spec.default_target_size
        table.add_row(name, f"{h}x{w} {spec.default_color_mode}", spec.default_interpolation,
                      f"{count_parameters(name):,}", spec.description)  # fmt: skip
    out.print(table)
    err.print("Parameters: at the default input size, 2 classes (one sigmoid output).")


@app.command()
def recipes():
    """List the recipes (--recipe): named, versioned settings, with the figures measured for them."""
    from imgclf.recipes import list_recipes

    table = Table("name", "version", "settings", "measured")
    for recipe in list_recipes():
        shown = ", ".join(f"{k}={v}" for k, v in recipe.settings.items())
        table.add_row(recipe.name, str(recipe.version), f"{recipe.description}\n[dim]{shown}[/dim]", recipe.measured)
    out.print(table)


@app.command()
def split(
    source: Annotated[Path, typer.Argument(help="Folder of class folders (SOURCE/<class>/<image>).")],
    dest: Annotated[Path, typer.Argument(help="New or empty folder for DEST/train/<class> + DEST/validation/<class>.")],
    ratio: Annotated[float, typer.Option(help="Share of each class's images for training.")] = 0.9,
    seed: Annotated[int, typer.Option(help="Seed of the stratified split.")] = 42,
    mode: Annotated[str, typer.Option(help="copy, link (hard links) or symlink.")] = "copy",
):  # fmt: skip
    """Split a folder into train/ and validation/, stratified and seeded, skipping unreadable files."""
    from rich.markup import escape

    from imgclf.data.split import split_folder

    summary = split_folder(source, dest, ratio, seed, mode)
    for bad in summary["skipped"]:
        err.print(f"[yellow]skipped[/yellow] {escape(bad['path'])}: {escape(bad['reason'])}")
    table = Table("class", "train", "validation")
    for name in summary["train"]:
        table.add_row(escape(name), str(summary["train"][name]), str(summary["validation"][name]))
    out.print(table)
    err.print(f"Split into {dest} ({mode}); {len(summary['skipped'])} unreadable file(s) skipped.")


@app.command()
def backbones():
    """List the pretrained backbones: input size, cut layer, parameters, preprocessing, default head."""
    load_api()
    from imgclf.models.backbones import backbone_table

    table = Table("input", "cut layer", "backbone params", "preprocessing", "default head")
    table.add_column("name", no_wrap=True)
    table.columns.insert(0, table.columns.pop())
    for row in backbone_table():
        table.add_row(row["name"], row["input"], row["cut_layer"], f"{row['params']:,}", row["preprocess"],
                      row["head"])  # fmt: skip
    out.print(table)


@app.command()
def pack(
    data: Annotated[str, typer.Argument(help="Dataset folder or named dataset (any layout train reads).")],
    out_dir: Annotated[str, typer.Argument(metavar="OUT", help="New or empty folder (or gs://, s3:// URL).")],
    target_size: Annotated[tuple[int, int], typer.Option(help="Height and width in pixels (train at this size).")] = DEFAULT_TARGET_SIZE,
    color_mode: Annotated[str, typer.Option(help="rgb or grayscale.")] = "rgb",
    interpolation: Annotated[str, typer.Option(help="Resize filter, as for train.")] = DEFAULT_INTERPOLATION,
    validation_split: Annotated[
        float | None, typer.Option(help="Held out when DATA has no validation folder (0.2).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of that split (train's default, 0, gives train's split).")] = 0,
    label_pattern: Annotated[str | None, typer.Option(help="Labels from flat file names, as for train.")] = None,
    shard_size: Annotated[float, typer.Option(help="Shard size in MB.")] = 100.0,
):  # fmt: skip
    """Decode and resize DATA once into TFRecord shards + manifest.json; train, evaluate and predict read OUT."""
    from rich.markup import escape
    from rich.progress import Progress

    load_api()
    from imgclf.data.images import ImageSpec
    from imgclf.data.named import resolve
    from imgclf.pipeline.records import pack as pack_data

    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("Packing", total=None)
        manifest = pack_data(resolve(data), out_dir, image=ImageSpec(target_size, color_mode, interpolation),
                             validation_split=validation_split, seed=seed,
                             label_pattern=label_pattern, shard_size_mb=shard_size,
                             progress=lambda n: bar.update(task, completed=n))  # fmt: skip
    for bad in manifest["skipped"]:
        err.print(f"[yellow]skipped[/yellow] {escape(bad['path'])}: {escape(bad['reason'])}")
    table = Table("split", "images", "shards", "MB")
    for split, part in manifest["splits"].items():
        table.add_row(split, f"{part['count']:,}", str(len(part["shards"])),
                      f"{sum(s['bytes'] for s in part['shards']) / 1e6:,.1f}")  # fmt: skip
    out.print(table)
    err.print(f"Packed into {out_dir}: {len(manifest['skipped'])} unreadable file(s) skipped.")


@app.command("table")
@with_these_settings_options("images", "x_col", "y_col", "suffix", "class_names", "split_col", "group_col",
                             "group_by", "validation_split", "seed")  # fmt: skip
def table_command(
    data: Annotated[Path, typer.Argument(help="A dataset folder, or a label table (as for `imgclf train`).")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the table here (.csv, .tsv or .parquet; never over a file). Default: CSV on stdout.")] = None,
    to_folders: Annotated[Path | None, typer.Option(help="Instead, lay the pictures out as class folders here (DEST/train/<class>/, DEST/validation/<class>/).")] = None,
    mode: Annotated[str, typer.Option(help="With --to-folders: copy, link (hard links) or symlink. Never a move.")] = "copy",
    **options,
):  # fmt: skip
    """The table of a dataset (path, label, split, group: what relabel and quarantine made of a folder), for any
    other tool; or a label table's pictures as class folders, for tools that need folders."""
    import types

    from rich.markup import escape

    from imgclf.data.folders import load_folder
    from imgclf.data.table_io import csv_text, dataset_rows, table_to_folders, write_table
    from imgclf.data.tables import TableColumns

    given = types.SimpleNamespace(**options)
    split = options.get("validation_split")
    dataset = load_folder(data, 0.0 if split is None else split, options.get("seed") or 0,
                          table=TableColumns.of(given), group_by=options.get("group_by"))  # fmt: skip
    if dataset.source is not None:
        err.print(escape(f"Label table: {dataset.source.summary}"))
    if to_folders is not None:
        counts = table_to_folders(dataset, to_folders, mode)
        shown = Table("split", "class", "pictures")
        for part, classes in counts.items():
            for name, n in classes.items():
                shown.add_row(part, escape(name), str(n))
        out.print(shown)
        err.print(f"Laid out in {escape(str(to_folders))} ({mode}); the pictures themselves were not moved.")
        return
    rows = dataset_rows(dataset, relative_to=data if Path(data).is_dir() else None)
    if out_file is None:
        print(csv_text(rows), end="")
        return
    write_table(rows, out_file)
    err.print(f"{len(rows)} rows written to {escape(str(out_file))}.")
