"""A plain-language verdict on a training history: over-fitting, under-fitting, still improving, unstable.

The rules follow the course's reading of the accuracy/loss plots (Course 2, weeks 1-2: training accuracy
climbs towards 1.0 while validation accuracy stalls and validation loss rises = over-fitting) and the
usual remedies it teaches (augmentation, dropout, transfer learning, more data or epochs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Validation loss this much above its best (relative) counts as "worsening".
LOSS_RISE = 0.10
#: Train-minus-validation accuracy gap that counts as over-fitting.
ACCURACY_GAP = 0.10
#: Final training accuracy below this is under-fitting (with validation no better).
UNDERFIT_ACCURACY = 0.70
#: Mean zig-zag of validation accuracy (distance of each epoch from the mean of its neighbours) above
#: this is unstable; a steady rise or fall has none.
UNSTABLE_JUMP = 0.05

REMEDIES = {
    "overfitting": [
        "augment the training images (--augment course)",
        "add dropout (the chollet model has Dropout 0.5)",
        "start from a pretrained backbone (transfer learning)",
        "collect more training images",
        "keep the weights of the best epoch, or stop earlier",
    ],
    "underfitting": [
        "train for more epochs",
        "use a bigger model or a pretrained backbone",
        "raise the learning rate, or try the adam optimizer",
        "check that the labels (folder names) are right",
    ],
    "still_improving": ["train for more epochs: validation is still getting better"],
    "unstable": [
        "lower the learning rate (e.g. --learning-rate 1e-4)",
        "use a larger batch size",
        "use more validation images, so the measurement is less noisy",
    ],
    "good_fit": [],
    "no_validation": ["hold out validation images (--validation-split 0.2) to see how the model generalises"],
}


@dataclass(frozen=True)
class Diagnosis:
    """What the curves say: every condition that holds, most important first.

    Attributes:
        verdict: the most important condition: ``overfitting``, ``underfitting``, ``unstable``,
            ``still_improving``, ``good_fit`` or ``no_validation``.
        message: one or two plain sentences per condition, most important first.
        conditions: every condition that holds, in that order (``verdict`` is the first).
        from_epoch: for over-fitting, the epoch (1-based) after which validation stopped improving.
        best_epoch: the epoch with the lowest validation loss (``None`` without validation).
        remedies: what usually helps, most effective first, for all the conditions.
    """

    verdict: str
    message: str
    from_epoch: int | None = None
    best_epoch: int | None = None
    remedies: list[str] = field(default_factory=list)
    conditions: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "conditions": list(self.conditions or (self.verdict,)),
            "message": self.message,
            "from_epoch": self.from_epoch,
            "best_epoch": self.best_epoch,
            "remedies": list(self.remedies),
        }


def diagnose(history: list[dict]) -> Diagnosis:
    """Diagnose a history (rows with ``epoch``, ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``).

    Each condition is tested on its own, so an over-fitting run whose validation accuracy also zig-zags is
    named both ways (over-fitting first: it is what to fix first).

    Raises:
        ValueError: the history is empty.
    """
    if not history:
        raise ValueError("cannot diagnose an empty history")
    last = history[-1]
    if "val_loss" not in last:
        return Diagnosis(
            "no_validation", "No validation data: over-fitting cannot be seen.", remedies=REMEDIES["no_validation"],
            conditions=("no_validation",),
        )  # fmt: skip
    epochs = [r["epoch"] for r in history]
    val_loss = [r["val_loss"] for r in history]
    best_i = min(range(len(val_loss)), key=val_loss.__getitem__)
    best_epoch = epochs[best_i]
    train_acc, val_acc = last.get("accuracy", 0.0), last.get("val_accuracy", 0.0)
    gap = train_acc - val_acc
    rising = val_loss[-1] > val_loss[best_i] * (1 + LOSS_RISE) and best_i < len(history) - 1
    train_improving = history[-1]["loss"] < history[best_i]["loss"]
    va = [r.get("val_accuracy", 0.0) for r in history]
    jumps = [abs(va[i] - (va[i - 1] + va[i + 1]) / 2) for i in range(1, len(va) - 1)]
    jumpy = len(jumps) >= 2 and sum(jumps) / len(jumps) > UNSTABLE_JUMP

    found: list[tuple[str, str]] = []
    overfitting = rising and train_improving and gap > ACCURACY_GAP
    wide_gap = not overfitting and gap > 2 * ACCURACY_GAP  # over-fitting the loss curve may not show yet
    if wide_gap:
        found.append((
            "overfitting",
            f"Over-fitting: training accuracy {train_acc:.3f} but validation accuracy only {val_acc:.3f}.",
        ))  # fmt: skip
    if overfitting:
        found.append((
            "overfitting",
            f"Over-fitting from epoch {best_epoch}: training accuracy kept rising to {train_acc:.3f} while "
            f"validation loss worsened from {val_loss[best_i]:.3f} to {val_loss[-1]:.3f} "
            f"(validation accuracy {val_acc:.3f}).",
        ))  # fmt: skip
    elif train_acc < UNDERFIT_ACCURACY and gap < ACCURACY_GAP:
        found.append((
            "underfitting",
            f"Under-fitting: training accuracy is only {train_acc:.3f} (validation {val_acc:.3f}); "
            "the model has not learned the training images yet.",
        ))  # fmt: skip
    if jumpy:
        found.append((
            "unstable",
            f"Unstable: validation accuracy zig-zags by {sum(jumps) / len(jumps):.3f} on average from one "
            "epoch to the next.",
        ))  # fmt: skip
    if not overfitting and best_i >= len(history) - 2 and len(history) >= 2 and val_loss[-1] < val_loss[0]:
        found.append((
            "still_improving",
            f"Still improving: validation loss was lowest at epoch {best_epoch} of {epochs[-1]} "
            f"(validation accuracy {val_acc:.3f}).",
        ))  # fmt: skip
    if not found and val_acc < UNDERFIT_ACCURACY:  # agreement alone is no good fit: both can be poor
        found.append((
            "underfitting",
            f"Under-fitting: validation accuracy is only {val_acc:.3f} (training {train_acc:.3f}).",
        ))  # fmt: skip
    if not found:
        found.append((
            "good_fit",
            f"Good fit: training and validation agree (accuracy {train_acc:.3f} vs {val_acc:.3f}); "
            f"validation loss was lowest at epoch {best_epoch}.",
        ))  # fmt: skip
    remedies = list(dict.fromkeys(r for verdict, _ in found for r in REMEDIES[verdict]))
    return Diagnosis(
        found[0][0], " ".join(message for _, message in found),
        from_epoch=best_epoch if overfitting else None,
        best_epoch=best_epoch, remedies=remedies, conditions=tuple(verdict for verdict, _ in found),
    )  # fmt: skip
