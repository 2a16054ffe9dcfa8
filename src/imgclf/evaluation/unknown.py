"""How well a run tells its own kind of images from others: AUROC and FPR at 95 % TPR for every OOD method.

``imgclf evaluate RUN DATA --ood OTHER`` calls :func:`ood_evaluation` with DATA's evaluation images as the
in-distribution set and every image under OTHER as the out-of-distribution set (see :mod:`imgclf.unknown.detector`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imgclf.errors import ImgclfError
from imgclf.predict.predictor import Predictor
from imgclf.unknown.detector import METHODS, ood_metrics


def ood_evaluation(predictor: Predictor, in_images, out_images) -> dict:
    """Score both sets with every method of the run's detector.

    Args:
        predictor: a run's :class:`~imgclf.predict.predictor.Predictor` with an OOD detector.
        in_images: images like the training set (paths, folders or a uint8 array; see
            :meth:`~imgclf.predict.predictor.Predictor.predict`).
        out_images: other images (an OTHER folder is searched recursively).

    Returns:
        ``{"default": method, "threshold_false_alarm_rate": rate, "methods": {method: {"auroc",
        "fpr_at_95_tpr", "in_images", "out_images", "unknown_rate_in", "unknown_rate_out"}}}``; unreadable files
        are left out.

    Raises:
        ImgclfError: the run has no OOD detector, or either set has no readable image.
    """
    f_in = predictor.predict(in_images, features=True).features
    f_out = predictor.predict(out_images, features=True).features
    f_in, f_out = f_in[~np.isnan(f_in).any(axis=1)], f_out[~np.isnan(f_out).any(axis=1)]
    if not len(f_in) or not len(f_out):
        raise ImgclfError("OOD evaluation needs readable images in both sets. "
                          f"Received: {len(f_in)} in-distribution, {len(f_out)} other")  # fmt: skip
    detector, methods = predictor.ood, {}
    for method in METHODS:
        s_in, s_out = detector.scores(f_in, method), detector.scores(f_out, method)
        threshold = detector.thresholds[method]
        methods[method] = {**ood_metrics(s_in, s_out), "unknown_rate_in": float((s_in > threshold).mean()),
                           "unknown_rate_out": float((s_out > threshold).mean())}  # fmt: skip
    return {"default": detector.method, "threshold_false_alarm_rate": detector.false_alarm_rate, "methods": methods}


def plot_reliability(calibration: dict, path) -> Path:
    """The reliability diagram (Guo et al. 2017, fig. 1) before and after temperature scaling: per confidence bin,
    the validation accuracy against the diagonal of perfect calibration, with the ECE in each title.

    Args:
        calibration: a run's ``calibration.json`` (``reliability_before``/``reliability_after``, ``temperature``).
        path: PNG to write.
    """
    from imgclf.plotting import new_figure, save_figure

    fig, axes = new_figure(1, 2, figsize=(8.4, 3.8), dpi=100)
    for ax, key, title in ((axes[0], "reliability_before", "before"), (axes[1], "reliability_after", "after")):
        r = calibration[key]
        edges = np.asarray(r["edges"])
        width = edges[1] - edges[0]
        accuracy = [b["accuracy"] or 0.0 for b in r["bins"]]
        ax.bar(edges[:-1], accuracy, width=width, align="edge", color="#4c72b0", edgecolor="white", label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="#999999", label="perfectly calibrated")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy",
               title=f"{title}: ECE {r['ece']:.4f}" + (f" (T = {calibration['temperature']:.3f})" if title == "after"
                                                       else ""))  # fmt: skip
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
