"""Commands that train: ``train`` and ``demo``; the augmentation options ``preview`` shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from imgclf.cli._common import app, describe_data, err, load_api, out, print_finished, print_metrics
from imgclf.cli._settings import (
    AUG_FLAGS,
    augmentation_flags,
    given_settings,
    with_augmentation_options,
    with_settings_options,
)
from imgclf.settings import LR_FIND_END_LR, LR_FIND_START_LR, LR_FIND_STEPS


def augmentation_from_options(base, **flags):
    """An ``Augmentation`` from a preset/config value plus the augmentation options given (ranges as text).

    Raises:
        ImgclfError: a bad preset, range or value.
    """
    from imgclf.pipeline.augment import make_augmentation

    return make_augmentation(base, **augmentation_flags(flags))


@app.command()
@with_settings_options
@with_augmentation_options
def train(
    data: Annotated[str | None, typer.Argument(help="Folder (DATA/train/<class>/ + DATA/validation/<class>/, or DATA/<class>/), pixel CSV, or a named dataset (`imgclf datasets list`) (default: the config's data)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings (a run's config.yaml works); flags override it.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this killed or interrupted run from its last completed epoch.", rich_help_panel="Training control")] = None,
    from_run: Annotated[Path | None, typer.Option("--from", help="Start from this run's model: new images train on, new class folders get new outputs (its settings unless given, the learning rate annealed; a class it had must still be there).", rich_help_panel="Training control")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: <model>-<date>-<time>).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Folder that holds run folders.")] = Path("runs"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run folder of the same name.")] = False,
    workers: Annotated[str | None, typer.Option(help="With --distribute multi-worker: host:port of every worker, comma-separated, the same on each (writes TF_CONFIG; without it TF_CONFIG is read).", rich_help_panel="Training")] = None,
    worker_index: Annotated[int | None, typer.Option(help="This worker's position in --workers, from 0 (worker 0 is the chief, which writes the run).", rich_help_panel="Training")] = None,
    **settings,
):  # fmt: skip
    """Train a model on a folder of images and write runs/<name>/."""
    imgclf = load_api()
    from imgclf.errors import ImgclfError

    if resume is not None:
        given = sorted(k for k, v in {**given_settings(settings), **{k: settings.get(k) for k in AUG_FLAGS}}.items()
                       if v is not None)  # fmt: skip
        if data is not None or config is not None or given or from_run is not None:
            extra = ["DATA"] * (data is not None) + ["config"] * (config is not None) + given
            extra += ["--from"] * (from_run is not None)
            raise ImgclfError(
                f"resume continues a run with its own data and settings; drop {', '.join(extra)} "
                "(or start a new run with them)."
            )
        err.print(f"Resuming {resume}")
        print_finished(imgclf.ImageClassifier.resume(resume), resume)
        return
    if from_run is not None and config is None:  # the run's own settings, the flags given on top
        from imgclf.runs.record import CONFIG_FILE, check_run_dir

        config = check_run_dir(from_run) / CONFIG_FILE
    clf, data = _classifier(data, config, settings)
    resolved = clf.resolve_settings()  # every setting checked before anything is written
    from imgclf.data.named import resolve
    from imgclf.runs.folder import new_run
    from imgclf.training.distributed.runner import join_cluster

    chief = join_cluster(clf.distribute, workers, worker_index, name, say=err.print, sigterm_interrupts=True)

    data = resolve(data)
    from imgclf.data.tables import TableColumns

    dataset = imgclf.load_folder(data, resolved.validation_split, clf.seed, clf.label_pattern, clf.label_column,
                                 TableColumns.of(clf), clf.group_by)  # fmt: skip
    describe_data(dataset)
    _announce(resolved)
    if not chief:  # it writes nothing: a restart takes the chief's checkpoint
        clf.fit(dataset, run_dir=runs_dir / name)
        err.print(f"Worker finished; the chief wrote the run ({escape(str(runs_dir / name))}).")
        return
    restart = clf.distribute == "multi-worker"  # a restarted cluster continues its unfinished run
    protect = [data] + ([(from_run, "the run --from starts from")] if from_run is not None else [])
    with new_run(runs_dir, name, overwrite, prefix=resolved.backbone or resolved.model, protect=protect,
                 restart=restart) as run:  # fmt: skip
        clf.fit(dataset, run_dir=run, from_run=from_run)
    print_finished(clf, run)


def _classifier(data, config: Path | None, settings: dict):
    """``(ImageClassifier, data)`` from the command line: ``--config``'s settings, then the options given
    (``settings``: the setting and augmentation options, by name)."""
    imgclf = load_api()
    from imgclf import settings as declared
    from imgclf.errors import ImgclfError
    from imgclf.runs.settings_file import read_train_config

    chosen, config_data = read_train_config(config, declared.names()) if config is not None else ({}, None)
    chosen.update(given_settings(settings))
    if isinstance(chosen.get("target_size"), list):  # YAML has no tuples
        chosen["target_size"] = tuple(chosen["target_size"])
    typed = {k: settings[k] for k in AUG_FLAGS if settings.get(k) is not None}
    if typed:  # flags refine the augmentation given, else the recipe's; untyped flags never replace a recipe's
        base = chosen.get("augment")
        if base is None and chosen.get("recipe") is not None:
            from imgclf.recipes import get_recipe

            base = get_recipe(chosen["recipe"]).settings.get("augment")
        chosen["augment"] = augmentation_from_options(base, **typed)
    elif chosen.get("augment") is not None:
        chosen["augment"] = augmentation_from_options(chosen["augment"])
    data = data if data is not None else config_data
    if data is None:
        raise ImgclfError("DATA is missing: give a dataset folder, or a --config that names one (data: PATH).")
    return imgclf.ImageClassifier(**chosen), data


def _announce(resolved) -> None:
    """Say which recipe, model and augmentation a run uses."""
    if resolved.recipe is not None:
        err.print(f"Recipe {resolved.recipe} (version {resolved.recipe_version}): {resolved.model or resolved.backbone}"
                  f" at {resolved.target_size[0]}x{resolved.target_size[1]}, {resolved.optimizer} "
                  f"{resolved.learning_rate:g}, {resolved.lr_schedule} schedule, {resolved.epochs} epochs")  # fmt: skip
    if not resolved.augment.is_identity:
        shown = ", ".join(f"{k}={v}" for k, v in resolved.augment.changes().items())
        err.print(f"Augmenting training images: {shown}")


@app.command("lr-find")
@with_settings_options
@with_augmentation_options
def lr_find(
    data: Annotated[str | None, typer.Argument(help="Training data, as for `imgclf train` (default: the config's data).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings (a run's config.yaml works); flags override it.")] = None,
    start_lr: Annotated[float, typer.Option(help="First learning rate of the sweep.")] = LR_FIND_START_LR,
    end_lr: Annotated[float, typer.Option(help="Last learning rate of the sweep.")] = LR_FIND_END_LR,
    steps: Annotated[int, typer.Option(help="Training batches in the sweep (at most; it stops when the loss diverges).")] = LR_FIND_STEPS,
    out_path: Annotated[Path, typer.Option("--out", help="PNG of the loss against the learning rate.")] = Path("lr_find.png"),
    **settings,
):  # fmt: skip
    """Learning-rate range test (Smith 2017; fastai's lr_find): train briefly with a growing rate, suggest one."""
    clf, data = _classifier(data, config, settings)  # augmentation options arrive with the settings
    resolved = clf.resolve_settings()
    _announce(resolved)
    from imgclf.data.named import resolve

    err.print(f"Sweeping the learning rate from {start_lr:g} to {end_lr:g} over at most {steps} batches ...")
    result = clf.lr_find(resolve(data), start_lr=start_lr, end_lr=end_lr, steps=steps, plot=out_path)
    stop = "stopped: the loss diverged" if result.diverged else "reached the end of the sweep"
    err.print(f"{len(result.learning_rates)} batches, {stop}. Plot: {escape(str(out_path))}")
    out.print(f"Suggested learning rate: {result.suggestion:.2g} (steepest descent of the loss; its minimum is at "
              f"{result.minimum:.2g}). Train with --learning-rate {result.suggestion:.2g}")  # fmt: skip


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
    from imgclf.runs.folder import new_run
    from imgclf.runs.record import METRICS_FILE

    root = write_digits()
    err.print(f"Digits dataset (scikit-learn, 8x8 PNGs): {root}")
    clf = imgclf.ImageClassifier(
        model="course_28",
        target_size=(28, 28),
        color_mode="grayscale",
        batch_size=32,
        epochs=epochs,
        validation_split=0.2,
    )
    clf.resolve_settings()  # every setting checked before anything is written
    dataset = imgclf.load_folder(root, clf.validation_split, clf.seed)
    describe_data(dataset)
    with new_run(runs_dir, name, prefix="demo") as run:
        clf.fit(dataset, run_dir=run)
    print_finished(clf, run)  # evaluates on the held-out digits and writes the report
    print_metrics(read_json(run / METRICS_FILE))
