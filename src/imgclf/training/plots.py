"""Training curves as in the course: training vs validation accuracy, and loss, per epoch."""

from __future__ import annotations

from pathlib import Path

from imgclf.plotting import new_figure, save_figure


def plot_history(rows: list[dict], out_dir: str | Path, fine_tune_start: int | None = None) -> list[Path]:
    """Draw ``accuracy.png`` and ``loss.png`` (training vs validation) into ``out_dir``.

    Args:
        rows: history rows as written by :class:`~imgclf.training.callbacks.HistoryRecorder`.
        out_dir: folder for the PNGs (created if missing).
        fine_tune_start: first epoch of a fine-tuning phase, marked with a vertical line.

    Returns:
        Paths of the written PNG files.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = [r["epoch"] for r in rows]
    written = []
    for metric, title in (("accuracy", "Training and validation accuracy"), ("loss", "Training and validation loss")):
        fig, ax = new_figure(figsize=(6, 4), dpi=100)
        for key, label, style in ((metric, "Training", "o-"), (f"val_{metric}", "Validation", "s-")):
            points = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
            if points:
                ax.plot(*zip(*points), style, label=label, markersize=3)
        if fine_tune_start is not None:
            ax.axvline(fine_tune_start - 0.5, color="grey", linestyle="--", label="fine-tuning starts")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        written.append(save_figure(fig, out_dir / f"{metric}.png"))
    return written
