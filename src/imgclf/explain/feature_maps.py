"""Feature maps of every convolution and pooling layer, drawn as the course's ``display_grid``.

Source: the course's "Visualizing Intermediate Representations" cell (Course 2 week 1): each channel of a
layer's output is standardised (``x -= mean; x /= std; x *= 64; x += 128``), clipped to 0-255 and the
channels are laid side by side.
"""

from __future__ import annotations

import keras
import numpy as np

#: Layer types whose outputs are drawn.
DRAWN_LAYERS = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def channel_tiles(activation: np.ndarray) -> np.ndarray:
    """One layer's output ``(height, width, channels)`` as a ``display_grid``.

    Returns:
        uint8 ``(height, width * channels)``: channel ``i`` occupies columns ``i*width .. (i+1)*width``.
    """
    a = np.asarray(activation, dtype=np.float64)
    h, w, n = a.shape
    a = a - a.mean(axis=(0, 1), keepdims=True)
    std = a.std(axis=(0, 1), keepdims=True)
    a = np.divide(a, std, out=np.zeros_like(a), where=std > 0) * 64 + 128
    tiles = np.clip(a, 0, 255).astype(np.uint8)
    return tiles.transpose(0, 2, 1).reshape(h, n * w)


def wrap_tiles(grid: np.ndarray, tile_width: int, per_row: int = 16) -> np.ndarray:
    """Fold a one-row display grid ``(h, w * n)`` into rows of ``per_row`` tiles (blank-padded), for viewing."""
    h, total = grid.shape
    n = total // tile_width
    rows = -(-n // per_row)
    padded = np.full((h, rows * per_row * tile_width), 255, np.uint8)
    padded[:, :total] = grid
    return padded.reshape(h, rows, per_row * tile_width).transpose(1, 0, 2).reshape(rows * h, per_row * tile_width)


def feature_maps(model: keras.Model, image: np.ndarray) -> dict[str, np.ndarray]:
    """Display grids of every convolution and pooling layer for one image.

    Args:
        model: an imgclf model.
        image: uint8 ``(height, width, channels)`` at the model's input size.

    Returns:
        ``{layer_name: grid}`` in layer order, each grid uint8 ``(h, w * channels)`` (see
        :func:`channel_tiles`).
    """
    layers = [layer for layer in model.layers if isinstance(layer, DRAWN_LAYERS)]
    if not layers:
        return {}
    probe = keras.Model(model.input, [layer.output for layer in layers])
    outputs = probe(np.asarray(image)[None], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {layer.name: channel_tiles(np.asarray(out, dtype=np.float32)[0]) for layer, out in zip(layers, outputs)}


def filter_tiles(model: keras.Model) -> np.ndarray | None:
    """The first convolution's kernels as small images, each min-max scaled to 0-255.

    Returns:
        uint8 ``(filters, kh, kw, input_channels)`` (RGB filters for RGB models), or ``None`` when the
        model has no ``Conv2D``.
    """
    conv = next((layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)), None)
    if conv is None:
        return None
    k = np.asarray(conv.kernel, dtype=np.float64).transpose(3, 0, 1, 2)  # (filters, kh, kw, in)
    low = k.min(axis=(1, 2, 3), keepdims=True)
    span = k.max(axis=(1, 2, 3), keepdims=True) - low
    return (np.divide(k - low, span, out=np.zeros_like(k), where=span > 0) * 255).astype(np.uint8)


def write_feature_maps(model: keras.Model, image: np.ndarray, out_dir, min_tile: int = 48) -> list:
    """Write one PNG per convolution/pooling layer, ``overview.png`` and ``filters.png`` into ``out_dir``.

    Each layer PNG is its display grid (:func:`channel_tiles`), enlarged with nearest-neighbour so a tile
    is at least ``min_tile`` pixels high; the overview stacks all layers as the course's notebook does.

    Args:
        model: an imgclf model.
        image: uint8 ``(height, width, channels)`` at the model's input size.
        out_dir: folder to write into (created).

    Returns:
        The written paths, overview first.
    """
    from pathlib import Path

    from PIL import Image

    from imgclf.plotting import new_figure, save_figure, save_grid

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grids = feature_maps(model, image)
    written = []
    for i, (name, grid) in enumerate(grids.items(), start=1):
        scale = max(1, -(-min_tile // grid.shape[0]))
        big = Image.fromarray(grid, "L").resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
        path = out / f"{i:02d}_{name}.png"
        big.save(path)
        written.append(path)
    if grids:
        wrapped = {name: wrap_tiles(g, model.get_layer(name).output.shape[2]) for name, g in grids.items()}
        heights = [g.shape[0] / g.shape[1] * 14 for g in wrapped.values()]
        fig, axes = new_figure(
            len(grids), 1, figsize=(14, sum(heights) + 0.4 * len(grids)), squeeze=False, height_ratios=heights
        )
        for ax, (name, grid) in zip(axes[:, 0], wrapped.items()):
            ax.imshow(grid, cmap="viridis")
            ax.set_title(f"{name}: {model.get_layer(name).output.shape[-1]} channels", fontsize=9)
            ax.axis("off")
        fig.tight_layout()
        written.insert(0, save_figure(fig, out / "overview.png"))
    filters = filter_tiles(model)
    if filters is not None:
        tiles = np.stack(
            [
                np.asarray(Image.fromarray(f.squeeze(-1) if f.shape[-1] == 1 else f).resize((24, 24), Image.NEAREST))
                for f in filters
            ]
        )
        tiles = tiles[..., None] if tiles.ndim == 3 else tiles
        written.append(
            save_grid(tiles, out / "filters.png", cols=min(16, len(tiles)), title="First convolution's filters")
        )
    return written
