"""Commands that look inside: ``report``, ``explain``, ``feature-maps`` and ``show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgclf.cli._common import app, err, field, load_api
from imgclf.settings import DEFAULT_TARGET_SIZE


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Run folder written by `imgclf train`.")],
    data: Annotated[Path | None, typer.Option(help="Labelled images to evaluate on (default: the run's validation images).")] = None,
    image: Annotated[Path | None, typer.Option(help="Image whose feature maps are shown (default: the first evaluation image).")] = None,
):  # fmt: skip
    """Write RUN/report.html: data, curves, diagnosis, metrics, mistakes with Grad-CAM, feature maps."""
    load_api()
    from imgclf.report.html import write_report

    path = write_report(run, data, image)
    print(path)


@app.command()
def explain(
    run: Annotated[Path, typer.Argument(help="Run folder written by `imgclf train`.")],
    images: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    class_name: Annotated[str | None, typer.Option("--class", help="Class to explain (default: the predicted one).")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer whose activations are weighted (default: the last convolution).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the pictures (default: RUN/explain).")] = None,
):  # fmt: skip
    """Grad-CAM: write each image with a heat-map of where the model looked for the class."""
    load_api()
    from imgclf.explain import explain_files
    from imgclf.predict.predictor import Predictor

    records = explain_files(Predictor.from_run(run), images, out_dir or Path(run) / "explain", class_name, layer)
    if records:
        err.print(f"Grad-CAM on layer {records[0]['layer']!r}")
    for r in records:
        print(f"{field(r['path'])}\t{field(r['class'])}\t{r['probability']:.4f}\t{field(r['picture'])}")


@app.command("feature-maps")
def feature_maps_command(
    run: Annotated[Path, typer.Argument(help="Run folder written by `imgclf train`.")],
    image: Annotated[Path, typer.Argument(help="Image file.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the pictures (default: RUN/feature_maps).")] = None,
):  # fmt: skip
    """Draw every convolution and pooling layer's channels for one image, plus the first layer's filters."""
    load_api()
    from imgclf.explain.feature_maps import write_feature_maps
    from imgclf.predict.predictor import Predictor

    predictor = Predictor.from_run(run)
    for path in write_feature_maps(
        predictor.model, predictor.load_images([image])[0], out_dir or Path(run) / "feature_maps"
    ):
        print(path)


@app.command()
def show(
    data: Annotated[Path, typer.Argument(help="Dataset folder (as for `imgclf train`).")],
    count: Annotated[int, typer.Option(help="Images per class.")] = 8,
    out_path: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("samples.png"),
    target_size: Annotated[tuple[int, int], typer.Option(help="Height and width in pixels.")] = DEFAULT_TARGET_SIZE,
    seed: Annotated[int, typer.Option(help="Seed of the random choice.")] = 0,
):  # fmt: skip
    """A grid of sample training images per class, with labels (the course's 4x4 view)."""
    imgclf = load_api()
    from imgclf.data.images import ImageSpec
    from imgclf.pipeline.preview import sample_grid

    spec = ImageSpec(target_size)
    dataset = imgclf.load_folder(data, validation_split=0, seed=seed)
    print(sample_grid(dataset, out_path, count, spec, seed, title=Path(data).name))
