"""The learning-rate range test: train for a few hundred steps while the learning rate grows exponentially, record
the loss of every batch, and suggest the rate where the loss falls fastest.

Method: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks" (2015/2017), section 3.3 (the "LR
range test"); the exponential sweep, the smoothed loss (an exponential moving average with bias correction,
``beta = 0.98``), the stop once the loss diverges (4x its minimum) and the "steepest" suggestion follow fastai's
``Learner.lr_find`` (fastai 2, ``SuggestionMethod.Steepest``). The model is trained in place: give it a fresh one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.errors import ImgclfError
from imgclf.plotting import new_figure, save_figure
from imgclf.settings import LR_FIND_END_LR, LR_FIND_START_LR, LR_FIND_STEPS

#: Smoothing of the recorded loss (exponential moving average weight of the past).
SMOOTHING = 0.98
#: The sweep stops once the smoothed loss exceeds this many times its minimum.
DIVERGENCE = 4.0


@dataclass(frozen=True)
class LrFindResult:
    """What a range test measured.

    Attributes:
        learning_rates: float64 ``(steps,)``, the rate of each recorded step.
        losses: float64 ``(steps,)``, each step's training loss (its batch, before the update).
        smoothed: float64 ``(steps,)``, the bias-corrected exponential moving average of ``losses``.
        suggestion: the rate where the smoothed loss falls fastest against log(rate).
        minimum: the rate of the lowest smoothed loss.
        diverged: the sweep stopped early because the loss blew up.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float
    minimum: float
    diverged: bool

    def plot(self, path: str | os.PathLike) -> Path:
        """Draw the smoothed loss against the learning rate (log scale), the suggestion marked; save as PNG."""
        fig, ax = new_figure(figsize=(6, 4), dpi=100)
        ax.plot(self.learning_rates, self.losses, color="lightgrey", linewidth=0.8, label="loss per batch")
        ax.plot(self.learning_rates, self.smoothed, label="smoothed loss")
        at = int(np.argmin(np.abs(np.log(self.learning_rates) - math.log(self.suggestion))))
        ax.plot([self.suggestion], [self.smoothed[at]], "o", color="red",
                label=f"steepest descent: {self.suggestion:.2g}")  # fmt: skip
        ax.set_xscale("log")
        low, high = float(np.min(self.smoothed)), float(np.max(self.smoothed[: max(at + 1, len(self.smoothed) // 2)]))
        ax.set_ylim(low - 0.1 * (high - low + 1e-6), high + 0.25 * (high - low + 1e-6))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("Learning-rate range test")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        return save_figure(fig, path)


def check_sweep(start_lr: float, end_lr: float, steps: int) -> None:
    """Validate a sweep: ``0 < start_lr < end_lr`` and at least 10 steps.

    Raises:
        ImgclfError: otherwise, naming the bad value.
    """
    if not (isinstance(start_lr, (int, float)) and isinstance(end_lr, (int, float)) and 0 < start_lr < end_lr):
        raise ImgclfError(f"start_lr and end_lr must satisfy 0 < start_lr < end_lr. Received: {start_lr!r}, {end_lr!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 10:
        raise ImgclfError(f"steps must be an int of at least 10. Received: {steps!r}")


def _ema_step(avg: float, loss: float, step: int, beta: float) -> tuple[float, float]:
    """One step of the moving average: ``(new average, bias-corrected value)`` after ``loss`` at ``step`` (from 0)."""
    avg = beta * avg + (1 - beta) * loss
    return avg, avg / (1 - beta ** (step + 1))


def smooth(losses: np.ndarray, beta: float = SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average of ``losses`` float ``(n,)`` (as Adam corrects its moments)."""
    out, avg = np.empty(len(losses)), 0.0
    for i, loss in enumerate(losses):
        avg, out[i] = _ema_step(avg, float(loss), i, beta)
    return out


def suggest(learning_rates: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """``(steepest, minimum)``: the rate where ``smoothed`` falls fastest against log(rate) — fastai's
    "steepest" — and the rate of its minimum. The first and last tenth of the sweep are left out of the
    steepest search (the average is still warming up at one end and blowing up at the other)."""
    lrs, losses = np.asarray(learning_rates, float), np.asarray(smoothed, float)
    slope = np.gradient(losses, np.log(lrs))
    n = len(lrs)
    lo, hi = n // 10, max(n // 10 + 1, n - n // 10)
    steepest = lo + int(np.argmin(slope[lo:hi]))
    return float(lrs[steepest]), float(lrs[int(np.argmin(losses))])


def range_test(model, batches, *, start_lr: float = LR_FIND_START_LR, end_lr: float = LR_FIND_END_LR,
               steps: int = LR_FIND_STEPS, stop_on_divergence: bool = True) -> LrFindResult:  # fmt: skip
    """Run the range test on a compiled ``model`` (trained in place).

    Step ``i`` of ``steps`` trains one batch at ``start_lr * (end_lr / start_lr) ** (i / (steps - 1))``.

    Args:
        model: a compiled Keras model whose optimizer has a constant (float) learning rate.
        batches: an iterable of ``(images, targets)`` batches (a ``tf.data.Dataset``), repeated if shorter than
            ``steps``.
        start_lr: the sweep's first rate.
        end_lr: its last rate.
        steps: batches trained, at most.
        stop_on_divergence: stop once the smoothed loss exceeds :data:`DIVERGENCE` times its minimum (or is NaN).

    Returns:
        An :class:`LrFindResult`.

    Raises:
        ImgclfError: a bad sweep (:func:`check_sweep`), no batches, or a loss that diverged within 5 steps.
    """
    check_sweep(start_lr, end_lr, steps)
    rates = start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))
    lrs, losses, smoothed, best, avg, diverged = [], [], [], math.inf, 0.0, False
    iterator = iter(batches.repeat() if hasattr(batches, "repeat") else batches)
    for i, rate in enumerate(rates):
        try:
            x, y = next(iterator)
        except StopIteration:
            if not lrs:
                raise ImgclfError("the range test got no batches: the training data is empty.") from None
            break
        model.optimizer.learning_rate.assign(float(rate))
        loss = float(np.asarray(model.train_on_batch(x, y, return_dict=True)["loss"]))
        avg, value = _ema_step(avg, loss, i, SMOOTHING)
        lrs.append(rate)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if stop_on_divergence and (not math.isfinite(value) or value > DIVERGENCE * best):
            diverged = True
            break
    finite = np.isfinite(smoothed)  # a non-finite loss ends the sweep: at most the last step
    lrs, losses, smoothed = (np.asarray(v)[finite] for v in (lrs, losses, smoothed))
    if len(lrs) < 5:
        raise ImgclfError(f"the loss diverged within {len(lrs)} steps of the range test: lower start_lr. "
                          f"Received: start_lr={start_lr:g}")  # fmt: skip
    steepest, minimum = suggest(lrs, smoothed)
    return LrFindResult(lrs, losses, smoothed, steepest, minimum, diverged)


__all__ = ["LrFindResult", "range_test", "check_sweep", "smooth", "suggest", "SMOOTHING", "DIVERGENCE"]
