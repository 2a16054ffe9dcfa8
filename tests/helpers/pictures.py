"""Real pictures made with Pillow: squares in a corner (what a small ConvNet learns in a few epochs), discs and
stripes, red and blue textures (what pooled ImageNet features tell apart)."""

import os
from pathlib import Path

import numpy as np
from PIL import Image


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



def write_split_folder(data: Path, train: dict[str, int], validation: dict[str, int]) -> Path:
    """``data/train/<class>/`` and ``data/validation/<class>/`` of :func:`write_class_folder`'s pictures (the
    validation ones numbered from 100, so no picture is in both)."""
    write_class_folder(data / "train", train)
    write_class_folder(data / "validation", validation, start=100)
    return data


def write_colour_classes(root, count: int = 24):
    """``root/red`` and ``root/blue``: noisy textures, red- or blue-dominant (what pooled ImageNet features tell
    apart, unlike a square's position)."""
    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 90, (48, 48, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(150, 256, (48, 48), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


def write_pictures(folder, kind: str, count: int, start: int = 0, size: int = 64):
    """``count`` PNGs of one kind into ``folder``: ``"discs"`` (a bright disc on a noisy dark ground) or
    ``"stripes"`` (coloured stripes of random width) — textures a pretrained backbone's pooled features tell apart,
    wherever they are in the picture."""
    import numpy as np
    from PIL import Image, ImageDraw

    os.makedirs(folder, exist_ok=True)
    for i in range(start, start + count):
        rng = np.random.default_rng((kind == "stripes") * 10_000 + i)
        if kind == "discs":
            im = Image.fromarray(rng.integers(0, 70, (size, size, 3), dtype=np.uint8))
            r = int(rng.integers(size // 5, size // 3))
            x, y = (int(v) for v in rng.integers(r, size - r, 2))
            ImageDraw.Draw(im).ellipse(
                (x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(150, 256, 3))
            )
        else:
            arr = np.zeros((size, size, 3), np.uint8)
            width = int(rng.integers(2, 6))
            for c in range(0, size, 2 * width):
                arr[:, c : c + width] = rng.integers(100, 256, 3)
            im = Image.fromarray(arr).rotate(int(rng.integers(0, 180)))
        im.save(os.path.join(folder, f"{kind}-{i:03d}.png"))
