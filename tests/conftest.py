"""Shared fixtures: real image files generated with Pillow, and paths to ../shared."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CATS_AND_DOGS = SHARED / "datasets" / "cats_and_dogs_filtered"
PET_IMAGES = SHARED / "datasets" / "pet-images-condensed"
HAPPY_OR_SAD = SHARED / "datasets" / "happy-or-sad"


def requires_shared(path: Path):
    """Skip a test when a ../shared dataset is absent (CI has it)."""
    return pytest.mark.skipif(
        not path.exists(), reason=f"shared data not found at {path} (../shared beside the checkout)"
    )


def square_image(corner: str, size: int = 48, seed: int = 0) -> Image.Image:
    """A noisy dark RGB image with a bright square in one corner ('tl' or 'br').

    The corner decides the class: an easy, real-pixel task a small ConvNet learns in a few epochs.
    """
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 90, size=(size, size, 3), dtype=np.uint8)
    side = int(rng.integers(size // 4, size // 3 + 1))
    y0, x0 = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
    if corner == "br":
        y0, x0 = size - side - y0, size - side - x0
    arr[y0 : y0 + side, x0 : x0 + side] = rng.integers(200, 256, size=3, dtype=np.uint8)
    return Image.fromarray(arr, "RGB")


def write_class_folder(
    root: Path, classes: dict[str, int], *, size: int = 48, ext: str = "png", start: int = 0
) -> Path:
    """Write ``root/<class>/<i>.<ext>``: class index 0 → 'tl' squares, 1 → 'br', others → stripes."""
    for k, (name, count) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            seed = 1000 * k + start + i
            if k < 2:
                im = square_image("tl" if k == 0 else "br", size, seed)
            else:
                arr = np.zeros((size, size, 3), np.uint8)
                arr[:, k % size :: 4] = 255
                im = Image.fromarray(arr)
            im.save(folder / f"{start + i:03d}.{ext}")
    return root


@pytest.fixture
def split_data(tmp_path) -> Path:
    """DATA/train/{a_tl,b_br}/ (24 each) + DATA/validation/{a_tl,b_br}/ (8 each), 48x48 PNG."""
    root = tmp_path / "data"
    write_class_folder(root / "train", {"a_tl": 24, "b_br": 24})
    write_class_folder(root / "validation", {"a_tl": 8, "b_br": 8}, start=500)
    return root


@pytest.fixture
def single_data(tmp_path) -> Path:
    """DATA/{a_tl,b_br,c_stripes}/ with 20 PNGs each (one folder, no split)."""
    return write_class_folder(tmp_path / "single", {"a_tl": 20, "b_br": 20, "c_stripes": 20})


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run ``imgclf ARGS`` in-process through the console-script entry point: (exit code, stdout, stderr)."""
    from imgclf import cli

    monkeypatch.setattr(sys, "argv", ["imgclf", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    return info.value.code or 0, captured.out, captured.err


def squares_run(root: Path, epochs: int = 3, seed: int = 0) -> Path:
    """Train course_small at 32x32 on 20 + 20 generated square images (``root/data``); return ``root/run``."""
    from imgclf import ImageClassifier

    data = write_class_folder(root / "data", {"a_tl": 20, "b_br": 20}, size=40)
    ImageClassifier(model="course_small", target_size=(32, 32), epochs=epochs, batch_size=8, seed=seed).fit(
        data, run_dir=root / "run", verbose=0
    )
    return root / "run"


class Crash(Exception):
    """Raised by :class:`CrashAfter`: a run dying mid-training."""


def crash_after(n: int):
    """A Keras callback that raises :class:`Crash` after epoch ``n`` (1-based) ends, once the run's checkpoint
    of that epoch is written (the checkpoint callback runs before user callbacks)."""
    import keras

    class CrashAfter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == n:
                raise Crash

    return CrashAfter()


def cli_train(*args) -> None:
    """``imgclf train ARGS`` for module-scoped fixtures (no monkeypatch/capsys there); asserts success."""
    from imgclf import cli

    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["imgclf", "train", *map(str, args)])
    try:
        with pytest.raises(SystemExit) as info:
            cli.main()
    finally:
        mp.undo()
    assert (info.value.code or 0) == 0


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the tests' downloads, digits and cached features out of the user's ~/.cache/imgclf."""
    home = tmp_path_factory.mktemp("imgclf_home")
    previous = os.environ.get("IMGCLF_HOME")
    os.environ["IMGCLF_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("IMGCLF_HOME", None)
    else:
        os.environ["IMGCLF_HOME"] = previous
