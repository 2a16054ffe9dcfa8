"""Steady-epoch time: imgclf's tf.data pipeline vs the course's ImageDataGenerator pipeline.

Trains the same model (``course_small`` by default, 150x150, RMSprop 1e-3, batch 20, with validation as in
the course) for N epochs with each input pipeline, in one process, and prints per-epoch seconds, the
steady-epoch time (median of the epochs after the first) and their ratio.

    python bench/epoch_time.py [DATA] [--epochs 3] [--model course_small] [--augment course] [--cli]

The course pipeline is ``ImageDataGenerator(rescale=1/255).flow_from_directory(..., target_size=(150, 150),
batch_size=20, class_mode='binary')`` (Course 2 week 1 notebook), fed to a model without the rescaling layer
so that both models do the same arithmetic. With ``--augment course`` the training images are augmented with
the course's settings in both pipelines (``ImageDataGenerator(rescale=1/255, rotation_range=40, ...)`` on the
course side, needing scipy), validation images never. ``ImageDataGenerator`` is used here only, never in imgclf.

With ``--cli`` imgclf's side is the command a user types, ``imgclf train DATA --model M --augment A --epochs N``
(its own process, calibration off), timed by the ``seconds`` column of the run's ``history.csv``: what the
command's process set-up costs shows there (its 64 KB mmap threshold made augmented epochs up to 2.3x slower and no
API benchmark saw it: issue 23).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from imgclf import ImageClassifier  # noqa: E402
from imgclf.data.folders import load_folder  # noqa: E402
from imgclf.models import create_model  # noqa: E402
from imgclf.pipeline.augment import PRESETS  # noqa: E402
from imgclf.training.callbacks import EpochTimer, HistoryRecorder  # noqa: E402
from imgclf.training.optimizers import make_optimizer  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cats_and_dogs_filtered"


def compiled(model_name: str, with_rescaling: bool, precision: str = "float32", optimizer=None) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = create_model(model_name, (150, 150, 3), 2, "binary", precision)
    if not with_rescaling:  # the generator rescales; skip the model's own uint8 input + Rescaling layer
        inputs = keras.Input((150, 150, 3), dtype="float32")
        x = inputs
        for layer in model.layers[2:]:
            x = layer(x)
        model = keras.Model(inputs, x)
    optimizer = optimizer or keras.optimizers.RMSprop(learning_rate=1e-3)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def timed_fit(model, train, val, epochs: int) -> list[dict]:
    recorder = HistoryRecorder()
    model.fit(train, validation_data=val, epochs=epochs, callbacks=[EpochTimer(), recorder], verbose=0)
    return recorder.rows


def run_imgclf(data: Path, model_name: str, epochs: int, augment: str, precision: str) -> list[dict]:
    """imgclf as ``imgclf train`` runs it: its datasets (cache, augmentation after the cache, validation batches
    of 100) and its optimizer (the fused RMSprop)."""
    clf = ImageClassifier(model=model_name, target_size=(150, 150), augment=augment, precision=precision)
    train, val = clf.training_datasets(load_folder(data))
    return timed_fit(compiled(model_name, True, precision, make_optimizer("rmsprop", 1e-3)), train, val, epochs)


def run_imgclf_cli(data: Path, model_name: str, epochs: int, augment: str, precision: str) -> list[dict]:
    """``imgclf train`` as typed, in its own process; the epochs of its ``history.csv``."""
    import csv
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as runs:
        cmd = ["imgclf", "train", str(data), "--model", model_name, "--target-size", "150", "150", "--augment",
               augment, "--precision", precision, "--epochs", str(epochs), "--no-calibrate", "--runs-dir", runs,
               "--name", "r"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        with open(Path(runs) / "r" / "history.csv", newline="") as f:
            return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def run_course(data: Path, model_name: str, epochs: int, augment: str, precision: str) -> list[dict]:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    kw = dict(target_size=(150, 150), batch_size=20, class_mode="binary")
    train = ImageDataGenerator(rescale=1.0 / 255, **PRESETS[augment]).flow_from_directory(str(data / "train"), **kw)
    val = ImageDataGenerator(rescale=1.0 / 255).flow_from_directory(str(data / "validation"), **kw)
    return timed_fit(compiled(model_name, False), train, val, epochs)


def steady(rows: list[dict]) -> float:
    """Median seconds of the epochs after the first (the first also decodes/caches and traces)."""
    later = sorted(r["seconds"] for r in rows[1:]) or [rows[0]["seconds"]]
    mid = len(later) // 2
    return later[mid] if len(later) % 2 else (later[mid - 1] + later[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="course_small")
    parser.add_argument("--augment", default="none", choices=sorted(PRESETS))
    parser.add_argument("--precision", default="auto", help="imgclf side: auto, float32, mixed_bfloat16")
    parser.add_argument("--cli", action="store_true", help="imgclf's side as `imgclf train`, in its own process")
    args = parser.parse_args()
    results = {}
    ours = ("imgclf train (CLI)", run_imgclf_cli) if args.cli else ("imgclf tf.data", run_imgclf)
    for name, fn in (ours, ("course ImageDataGenerator", run_course)):
        start = time.perf_counter()
        rows = fn(args.data, args.model, args.epochs, args.augment, args.precision)
        results[name] = rows
        epochs = ", ".join(f"{r['seconds']:.1f}" for r in rows)
        print(
            f"{name:28s} epochs [{epochs}] s  steady {steady(rows):.2f} s/epoch  "
            f"val_accuracy {rows[-1].get('val_accuracy', float('nan')):.3f}  total {time.perf_counter() - start:.1f} s"
        )
    a, b = (steady(r) for r in results.values())
    print(
        f"augment={args.augment} precision={args.precision}: "
        f"steady-epoch ratio imgclf / course = {a / b:.2f}  (course is {b / a:.2f}x slower)"
    )


if __name__ == "__main__":
    main()
