"""Commands that look inside: ``report``, ``explain``, ``feature-maps`` and ``show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imgclf.cli._common import app, err, load_api


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
    imgclf = load_api()
    from PIL import Image

    from imgclf.classifier import expand_image_paths
    from imgclf.errors import ImgclfError
    from imgclf.explain import find_last_conv_layer, gradcam
    from imgclf.plotting import heatmap_overlay

    clf = imgclf.ImageClassifier.load(run)
    if class_name is not None and class_name not in clf.classes_:
        raise ImgclfError(f"--class must be one of {list(clf.classes_)}. Received: {class_name!r}")
    paths = expand_image_paths(images)
    x = clf.load_images(paths)
    index = clf.classes_.index(class_name) if class_name is not None else None
    maps, chosen = gradcam(clf.model_, x, index, layer)
    proba = clf.predict_proba(x)
    folder = out_dir or Path(run) / "explain"
    folder.mkdir(parents=True, exist_ok=True)
    err.print(f"Grad-CAM on layer {layer or find_last_conv_layer(clf.model_)!r}")
    for path, img, m, c, p in zip(paths, x, maps, chosen, proba):
        target = folder / f"{Path(path).stem}_gradcam_{clf.classes_[c]}.png"
        Image.fromarray(heatmap_overlay(img, m)).save(target)
        print(f"{path}\t{clf.classes_[c]}\t{p[c]:.4f}\t{target}")


@app.command("feature-maps")
def feature_maps_command(
    run: Annotated[Path, typer.Argument(help="Run folder written by `imgclf train`.")],
    image: Annotated[Path, typer.Argument(help="Image file.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for the pictures (default: RUN/feature_maps).")] = None,
):  # fmt: skip
    """Draw every convolution and pooling layer's channels for one image, plus the first layer's filters."""
    imgclf = load_api()
    from imgclf.explain.feature_maps import write_feature_maps

    clf = imgclf.ImageClassifier.load(run)
    for path in write_feature_maps(clf.model_, clf.load_images([image])[0], out_dir or Path(run) / "feature_maps"):
        print(path)


@app.command()
def show(
    data: Annotated[Path, typer.Argument(help="Dataset folder (as for `imgclf train`).")],
    count: Annotated[int, typer.Option(help="Images per class.")] = 8,
    out_path: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("samples.png"),
    target_size: Annotated[tuple[int, int], typer.Option(help="Height and width in pixels.")] = (150, 150),
    seed: Annotated[int, typer.Option(help="Seed of the random choice.")] = 0,
):  # fmt: skip
    """A grid of sample training images per class, with labels (the course's 4x4 view)."""
    imgclf = load_api()
    import numpy as np

    from imgclf.data.images import check_target_size, load_image
    from imgclf.plotting import save_grid

    size = check_target_size(target_size)
    dataset = imgclf.load_folder(data, validation_split=0, seed=seed)
    rng = np.random.default_rng(seed)
    picked, titles = [], []
    for k, name in enumerate(dataset.class_names):
        (members,) = np.nonzero(dataset.train.labels == k)
        for i in rng.choice(members, size=min(count, len(members)), replace=False):
            picked.append(load_image(dataset.train.paths[i], size))
            titles.append(name)
    save_grid(np.stack(picked), out_path, titles=titles, cols=max(4, min(count, 8)), title=f"{Path(data).name}")
    print(out_path)
