"""Trained runs: one trained once per test session and copied to each test that asks (``trained_runs``, a
session fixture of conftest), and a run that dies mid-training."""

import shutil
from pathlib import Path

from helpers.pictures import write_class_folder


def squares_run(root: Path, epochs: int = 3, seed: int = 0) -> Path:
    """Train course_small at 32x32 on 20 + 20 generated square images (``root/data``); return ``root/run``."""
    from imgclf import ImageClassifier

    data = write_class_folder(root / "data", {"a_tl": 20, "b_br": 20}, size=40)
    ImageClassifier(model="course_small", target_size=(32, 32), epochs=epochs, batch_size=8, seed=seed).fit(
        data, run_dir=root / "run", verbose=0
    )
    return root / "run"


class TrainedRuns:
    """Runs trained once per test session (per pytest-xdist worker), each handed out as a fresh copy, so a test
    may write into its run (an export, a report) without another test seeing it.

    ``squares(root, epochs, seed)``: :func:`squares_run`'s layout — ``root/data`` and ``root/run`` — copied from
    the one trained for ``(epochs, seed)``; returns ``root/run``.
    """

    def __init__(self, base: Path):
        self.base, self.trained = Path(base), {}

    def squares(self, root: Path, epochs: int = 4, seed: int = 1) -> Path:
        key = ("squares", epochs, seed)
        if key not in self.trained:
            self.trained[key] = squares_run(self.base / f"squares-{epochs}-{seed}", epochs=epochs, seed=seed)
        original = self.trained[key]
        shutil.copytree(original.parent / "data", Path(root) / "data")
        shutil.copytree(original, Path(root) / "run", symlinks=True)
        return Path(root) / "run"

    def data_of(self, epochs: int = 4, seed: int = 1) -> Path:
        """The folder the session's squares run of ``(epochs, seed)`` was trained on: the paths its records name (a
        copy's ``data`` holds the same pictures under other paths)."""
        return self.trained[("squares", epochs, seed)].parent / "data"


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
