"""Shared picture helpers: saving figures atomically, image grids, overlays.

Pictures are drawn with matplotlib's object-oriented ``Figure`` API (:func:`new_figure`), which renders to PNG
without pyplot: importing or calling imgclf never switches the plotting backend of a notebook or script, and
leaves no figure open in pyplot's state.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from imgclf._io import atomic_path


def new_figure(rows: int = 1, cols: int = 1, *, squeeze: bool = True, height_ratios=None, **figure_kwargs):
    """``(figure, axes)`` as ``pyplot.subplots`` gives them, but from ``matplotlib.figure.Figure``: no pyplot
    state, no backend. ``figure_kwargs`` go to ``Figure`` (``figsize`` in inches, ``dpi``); ``squeeze`` and
    ``height_ratios`` to ``Figure.subplots``."""
    fig = Figure(**figure_kwargs)
    return fig, fig.subplots(rows, cols, squeeze=squeeze, height_ratios=height_ratios)


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG atomically (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def save_grid(images: np.ndarray, path: str | os.PathLike, titles=None, cols: int | None = None, title=None) -> Path:
    """Draw images ``(n, height, width, channels)`` uint8 in a grid and save it as PNG.

    Args:
        images: the images; 1-channel images are drawn in grey.
        path: PNG file to write (atomically).
        titles: optional caption per image.
        cols: columns; default a near-square grid.
        title: optional figure title.
    """
    n = len(images)
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    fig, axes = new_figure(rows, cols, figsize=(2.2 * cols, 2.3 * rows + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = images[i]
            gray = img.ndim == 3 and img.shape[-1] == 1
            ax.imshow(img[..., 0] if gray else img, cmap="gray" if gray else None, vmin=0, vmax=255)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi=80)


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend a heat-map on an image (matplotlib's ``jet`` colours, as in the Keras Grad-CAM example).

    Args:
        image: uint8 ``(height, width, channels)``.
        heatmap: float ``(height, width)`` in [0, 1].
        alpha: weight of the heat-map.

    Returns:
        uint8 ``(height, width, 3)``.
    """
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    colours = matplotlib.colormaps["jet"](np.clip(heatmap, 0, 1))[..., :3] * 255.0
    return np.clip((1 - alpha) * rgb + alpha * colours, 0, 255).astype(np.uint8)
