"""Keras callbacks imgclf trains with: epoch timing, a history file, a Rich progress bar."""

from __future__ import annotations

import time
from pathlib import Path

import keras

from imgclf._io import write_json
from imgclf.runs.history import HISTORY_COLUMNS, write_history_csv  # noqa: F401  (re-exported)


class EpochTimer(keras.callbacks.Callback):
    """Adds ``seconds`` (wall-clock seconds of the epoch, validation included) to the epoch logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._start


class HistoryRecorder(keras.callbacks.Callback):
    """Keeps one row per finished epoch and rewrites ``history.csv`` atomically after each.

    Rows are dicts with :data:`HISTORY_COLUMNS` keys; ``epoch`` counts from 1; ``learning_rate`` is the
    optimizer's rate at the end of the epoch. Must run after
    :class:`EpochTimer` in the callback list so that ``seconds`` is in the logs.

    Args:
        path: CSV file to write, or ``None`` to keep rows in memory only.
    """

    def __init__(self, path: str | Path | None = None):
        super().__init__()
        self.path = Path(path) if path is not None else None
        self.rows: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch + 1}
        row.update({k: float(logs[k]) for k in HISTORY_COLUMNS[1:] if k in logs})
        optimizer = getattr(self.model, "optimizer", None)
        if "learning_rate" not in row and optimizer is not None:
            # The rate the optimizer stands at after the epoch's last step (a schedule's current value).
            row["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        self.rows.append(row)
        if self.path is not None:
            write_history_csv(self.path, self.rows)


class RichProgress(keras.callbacks.Callback):
    """A Rich progress bar per epoch (steps, loss, accuracy) and one summary line when it ends.

    Args:
        console: the ``rich.console.Console`` to draw on (stderr by default).
    """

    def __init__(self, console=None):
        super().__init__()
        from imgclf._console import console as make_console

        self.console = console or make_console()

    def on_train_begin(self, logs=None):
        self.epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from imgclf._console import is_live

        self._epoch = epoch
        if not is_live(self.console):  # a log file or a pipe: the epoch's one line, no bar's last frame
            self._progress = None
            return
        self._progress = Progress(
            TextColumn(f"Epoch {epoch + 1}/{self.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task("train", total=self.params.get("steps"), metrics="")
        self._progress.start()

    def on_train_batch_end(self, batch, logs=None):
        if self._progress is None:
            return
        shown = "  ".join(f"{k} {v:.4f}" for k, v in (logs or {}).items() if k in ("loss", "accuracy"))
        self._progress.update(self._task, completed=batch + 1, metrics=shown)

    def on_epoch_end(self, epoch, logs=None):
        if self._progress is not None:
            self._progress.stop()
        logs = logs or {}
        parts = [f"{k} {logs[k]:.4f}" for k in HISTORY_COLUMNS[1:-1] if k in logs]
        secs = f"{logs['seconds']:.1f}s" if "seconds" in logs else ""
        self.console.print(f"Epoch {epoch + 1}/{self.epochs}  {secs}  " + "  ".join(parts), highlight=False,
                           soft_wrap=self._progress is None)  # fmt: skip

    def on_train_end(self, logs=None):
        if getattr(self, "_progress", None) is not None:
            self._progress.stop()


class SkippedFilesReporter(keras.callbacks.Callback):
    """Says once, at the end of the epoch that met them, which files could not be read and why,
    and keeps ``skipped.json`` in the run folder up to date.

    Args:
        skipped: the :class:`~imgclf.pipeline.skipped.SkippedFiles` the pipeline records into.
        path: ``skipped.json`` to write, or ``None``.
        verbose: print on stderr (Rich) when true.
    """

    def __init__(self, skipped, path: str | Path | None = None, verbose: bool = True):
        super().__init__()
        self.skipped, self.path, self.verbose, self._told = skipped, Path(path) if path else None, verbose, 0

    def on_epoch_end(self, epoch, logs=None):
        items = self.skipped.items()
        if len(items) == self._told:
            return
        if self.verbose:
            from rich.markup import escape

            from imgclf._console import console as make_console

            console = make_console()
            console.print(f"[yellow]Skipped {len(items) - self._told} unreadable file(s):[/yellow]")
            for path, reason in items[self._told :]:
                console.print(f"  {escape(path)}: {escape(reason)}")
        self._told = len(items)
        if self.path is not None:
            write_json(self.path, self.skipped.to_list())


class NothingReadableGuard(keras.callbacks.Callback):
    """Stops training with a clear error when an epoch trained on no batch: every training image was unreadable
    (they are filtered out inside the pipeline, so this is known only once the epoch has been read).

    Args:
        skipped: the :class:`~imgclf.pipeline.skipped.SkippedFiles` the pipeline records into.
        num_images: training images listed.

    Raises:
        ImgclfError: at the end of an epoch without a training batch, naming one unreadable file and why.
    """

    def __init__(self, skipped, num_images: int):
        super().__init__()
        self.skipped, self.num_images, self.batches = skipped, num_images, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if self.batches:
            return
        from imgclf.errors import ImgclfError

        example = next(iter(self.skipped.items()), None)
        shown = f" (e.g. {example[0]!r}: {example[1]})" if example else ""
        raise ImgclfError(
            f"none of the {self.num_images} training images can be read{shown}; "
            "`imgclf doctor DATA` lists and quarantines bad files."
        )
