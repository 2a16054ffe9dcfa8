"""A classifier from a few images a class: the prototypes head (``imgclf train DATA --head prototypes``).

    python bench/few_shot.py [DATA] [--weights W] [--shots 1 5 10 20] [--draws 10]

Draws ``shots`` training images a class of DATA (train/ + validation/ layout) at random, ``draws`` times, and
scores the prototypes head on every validation image: SqueezeNet 1.1's cut-layer maps max-pooled and L2-normalised
(the head's own layers, run once over all images), each class the normalised mean of its drawn images
(:func:`imgclf.features.prototypes.class_prototypes`), the nearest prototype by cosine. Prints the median and the
worst validation accuracy per shot count. Then the command a user types, for draw 0 of each shot count, timed end to
end in a fresh process: ``imgclf train FOLDER --backbone squeezenet1_1 --weights W --head prototypes`` on a folder of
the drawn images (links) with all the validation images, and on the drawn images alone (no validation: what a
few-shot user has); its validation accuracy must be the API's for the same draw.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from imgclf.data.folders import load_folder
from imgclf.data.images import ImageSpec
from imgclf.features.extract import extract_features
from imgclf.features.prototypes import class_prototypes
from imgclf.models import create_model
from imgclf.models.backbones import get_backbone
from imgclf.models.precision import OUTPUT_LAYER
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.sources import samples_dataset
from imgclf.settings.resolved import BACKBONE_INTERPOLATION

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_DATA = SHARED / "datasets" / "cats_and_dogs_filtered"
DEFAULT_WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def head_vectors(samples, num_classes: int, weights: Path) -> np.ndarray:
    """The output layer's input of a prototypes model (max-pooled, unit-length maps), float32 ``(n, 512)``."""
    image = ImageSpec(get_backbone("squeezenet1_1").default_size, "rgb", BACKBONE_INTERPOLATION)
    model = create_model("squeezenet1_1", image.input_shape, num_classes, "categorical", pretrained=str(weights),
                         head="prototypes")  # fmt: skip
    vectors = keras.Model(model.inputs, model.get_layer(OUTPUT_LAYER).input)
    ds = samples_dataset(samples, image=image, class_mode="sparse", num_classes=num_classes, batch_size=32,
                         cache="none", skipped=SkippedFiles())  # fmt: skip
    return extract_features(vectors, ds)[0]


def draw(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(labels == k), shots, replace=False)
                           for k in range(labels.max() + 1)])  # fmt: skip


def link_folder(root: Path, dataset, chosen: np.ndarray, with_validation: bool) -> Path:
    for i in chosen:
        path = Path(dataset.train.paths[i])
        target = root / "train" / dataset.class_names[dataset.train.labels[i]] / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path.resolve())
    if with_validation:
        for path, label in zip(dataset.validation.paths, dataset.validation.labels):
            target = root / "validation" / dataset.class_names[label] / Path(path).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(path).resolve())
    return root


def cli_train(folder: Path, weights: Path, runs: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "imgclf.cli", "train", str(folder), "--backbone", "squeezenet1_1",
                    "--weights", str(weights), "--head", "prototypes", "--runs-dir", str(runs), "--name", "few"],
                   check=True, capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    history = (runs / "few" / "history.csv").read_text().splitlines()
    row = dict(zip(history[0].split(","), history[-1].split(",")))
    return seconds, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    dataset = load_folder(args.data)
    start = time.perf_counter()
    train = head_vectors(dataset.train, dataset.num_classes, args.weights)
    val = head_vectors(dataset.validation, dataset.num_classes, args.weights)
    print(f"head vectors of {len(train):,} + {len(val):,} images in {time.perf_counter() - start:.1f} s")
    y_train, y_val = np.asarray(dataset.train.labels), np.asarray(dataset.validation.labels)
    first = {}
    for shots in args.shots:
        accuracies = []
        for seed in range(args.draws):
            chosen = draw(y_train, shots, seed)
            prototypes = class_prototypes(train[chosen], y_train[chosen], dataset.num_classes)
            accuracies.append(float(((val @ prototypes.T).argmax(axis=1) == y_val).mean()))
        first[shots] = accuracies[0]
        print(f"{shots:2d} a class, {args.draws} draws: median {np.median(accuracies):.3f}, worst "
              f"{min(accuracies):.3f}  {json.dumps([round(a, 3) for a in accuracies])}")  # fmt: skip
    for shots in args.shots:
        chosen = draw(y_train, shots, 0)
        with tempfile.TemporaryDirectory() as tmp:
            home = {"IMGCLF_HOME": str(Path(tmp) / "home")}  # a cold feature cache, as a first run has
            os.environ.update(home)
            seconds, row = cli_train(link_folder(Path(tmp) / "d", dataset, chosen, True), args.weights,
                                     Path(tmp) / "runs")  # fmt: skip
            alone, _ = cli_train(link_folder(Path(tmp) / "s", dataset, chosen, False), args.weights,
                                 Path(tmp) / "runs2")  # fmt: skip
        same = abs(float(row["val_accuracy"]) - first[shots]) < 0.0015
        print(f"`imgclf train ... --head prototypes`, {shots} a class (draw 0): {seconds:.1f} s with "
              f"{len(val):,} validation images, val_accuracy {float(row['val_accuracy']):.3f} "
              f"({'the API figure' if same else f'API {first[shots]:.3f}: NOT the same'}); {alone:.1f} s "
              "on the drawn images alone")  # fmt: skip


if __name__ == "__main__":
    main()
