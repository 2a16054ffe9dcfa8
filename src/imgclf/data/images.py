"""Reading one image file into the array a model takes.

:func:`load_image` is the single preprocessing function shared by training, evaluation and
prediction (no train/serve skew): decode with Pillow, apply the EXIF orientation, convert to RGB
or grayscale (transparency composited on white, 16-bit scaled to 8-bit), resize to
``target_size`` with ``interpolation`` (default ``nearest``, Keras ``load_img``'s; see
:data:`DEFAULT_INTERPOLATION`). Rescaling happens inside the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from imgclf.data.files import needs_heif
from imgclf.errors import ImgclfError
from imgclf.settings import DEFAULT_INTERPOLATION, DEFAULT_TARGET_SIZE, check_setting  # noqa: F401  (re-exported)

COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1)}
# EXIF orientations 5-8 swap width and height (TIFF/EXIF 2.3 spec, tag 0x0112).
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}
#: Resampling filters by their Keras ``load_img`` / Pillow names.
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def check_target_size(target_size) -> tuple[int, int]:
    """Validate ``target_size``: two positive ints ``(height, width)`` in pixels.

    Raises:
        ImgclfError: e.g. ``target_size must be two positive ints. Received: (0, 150)``.
    """
    try:
        ok = len(target_size) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in target_size
        )
    except TypeError:
        ok = False
    if not ok:
        shown = tuple(target_size) if isinstance(target_size, (list, tuple)) else target_size
        raise ImgclfError(f"target_size must be two positive ints (height, width). Received: {shown!r}")
    return int(target_size[0]), int(target_size[1])


def check_color_mode(color_mode: str) -> str:
    """Validate ``color_mode``: ``"rgb"`` or ``"grayscale"`` (the setting's declared choices)."""
    return check_setting("color_mode", color_mode)


def check_interpolation(interpolation: str) -> str:
    """Validate ``interpolation``: one of :data:`INTERPOLATIONS` (the setting's declared choices)."""
    return check_setting("interpolation", interpolation)


def channels(color_mode: str) -> int:
    """Number of channels of ``color_mode``: 3 for ``"rgb"``, 1 for ``"grayscale"``."""
    return COLOR_MODES[check_color_mode(color_mode)][1]


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert a decoded Pillow image to ``"RGB"`` or ``"L"``, compositing transparency on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit (or 32-bit) samples: scale the full range down to 8 bits instead of clipping.
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    return im if im.mode == mode else im.convert(mode)


def image_to_array(
    im: Image.Image, target_size: tuple[int, int], color_mode: str = "rgb", interpolation: str = DEFAULT_INTERPOLATION
) -> np.ndarray:
    """Convert a Pillow image to a model input array.

    Args:
        im: any Pillow image (EXIF orientation is *not* applied here; see :func:`load_image`).
        target_size: ``(height, width)`` in pixels.
        color_mode: ``"rgb"`` or ``"grayscale"``.
        interpolation: resampling filter, a name from :data:`INTERPOLATIONS`; default ``"nearest"``
            (:data:`DEFAULT_INTERPOLATION`). Pillow widens the other filters when shrinking, so
            ``"bilinear"`` is antialiased.

    Returns:
        Array of shape ``(height, width, 3)`` (rgb) or ``(height, width, 1)`` (grayscale), uint8, 0-255.
    """
    height, width = target_size
    mode, _ = COLOR_MODES[color_mode]
    im = _to_mode(im, mode)
    if im.size != (width, height):
        im = im.resize((width, height), INTERPOLATIONS[interpolation])
    arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def open_image(path: str | os.PathLike | bytes, color_mode: str = "rgb", draft_size: tuple[int, int] | None = None):
    """Decode an image file with Pillow, EXIF orientation applied (``ImageOps.exif_transpose``).

    Args:
        path: image file path (``bytes`` accepted for ``tf.numpy_function``).
        color_mode: ``"rgb"`` or ``"grayscale"``; a hint for JPEG decoding only.
        draft_size: ``(width, height)`` in pixels the image will be shrunk to; JPEGs are then decoded at
            a reduced DCT scale no smaller than this (``Image.draft``), several times faster.

    Returns:
        A loaded ``PIL.Image.Image`` in its own mode (convert with :func:`image_to_array`).

    Raises:
        OSError: the file cannot be opened or decoded (Pillow's ``UnidentifiedImageError`` included).
    """
    if isinstance(path, bytes):
        path = path.decode("utf-8")
    needs_heif(path)
    with Image.open(path) as im:
        if draft_size is not None and im.format == "JPEG":
            orientation = im.getexif().get(0x0112, 1)
            want = draft_size[::-1] if orientation in _TRANSPOSED_ORIENTATIONS else draft_size
            im.draft(COLOR_MODES[color_mode][0] if im.mode != "CMYK" else None, want)
        im.load()
        return ImageOps.exif_transpose(im)


def check_crop(crop, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Validate a crop box ``(x, y, w, h)`` in pixels against an image ``size`` ``(width, height)``.

    Raises:
        ImgclfError: not four ints, empty, or reaching outside the image.
    """
    try:
        x, y, w, h = (int(v) for v in crop)
        ok = len(crop) == 4 and w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= size[0] and y + h <= size[1]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ImgclfError(
            f"crop must be x,y,w,h in pixels inside the {size[0]}x{size[1]} image. Received: {tuple(crop)!r}"
        )
    return x, y, w, h


def load_image(
    path: str | os.PathLike | bytes,
    target_size: tuple[int, int],
    color_mode: str = "rgb",
    interpolation: str = DEFAULT_INTERPOLATION,
    crop: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Read an image file into a model input array (the shared train/predict preprocessing).

    JPEG, PNG, BMP, GIF (first frame) and WebP are read with Pillow (:func:`open_image`). The EXIF
    orientation is applied; palette, RGBA/LA (composited on white), CMYK and 16-bit images are
    converted; the image is resized to ``target_size`` with ``interpolation`` (aspect ratio not kept,
    as in Keras' ``flow_from_directory``). Large JPEGs are decoded at a reduced DCT scale
    (``Image.draft``) no smaller than ``target_size``, which is several times faster; not with
    ``"nearest"``, which picks source pixels exactly as Keras' ``load_img`` does, nor with a crop.

    Args:
        path: image file path (``bytes`` accepted for ``tf.numpy_function``).
        target_size: ``(height, width)`` in pixels.
        color_mode: ``"rgb"`` or ``"grayscale"``.
        interpolation: resampling filter name (see :func:`image_to_array`).
        crop: optional box ``(x, y, w, h)`` in pixels of the upright image, cut out before resizing.

    Returns:
        Array of shape ``(height, width, channels)`` uint8, 0-255.

    Raises:
        OSError: the file cannot be opened or decoded (Pillow's ``UnidentifiedImageError`` included).
        ImgclfError: the crop box is not inside the image.
    """
    fast = interpolation != "nearest" and crop is None
    im = open_image(path, color_mode, (target_size[1], target_size[0]) if fast else None)
    if crop is not None:
        x, y, w, h = check_crop(crop, im.size)
        im = im.crop((x, y, x + w, y + h))
    return image_to_array(im, target_size, color_mode, interpolation)


def read_image(
    path: str | os.PathLike,
    target_size: tuple[int, int],
    color_mode: str = "rgb",
    interpolation: str = DEFAULT_INTERPOLATION,
    crop: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """:func:`load_image` for a file the user named (``explain``, ``feature-maps``, ``preview --image``): one that
    cannot be read is an error naming it, not a decoder's exception.

    Returns:
        uint8 ``(height, width, channels)``.

    Raises:
        ImgclfError: the file is missing, is not an image, is truncated or corrupt, or the crop is outside it.
    """
    try:
        return load_image(path, target_size, color_mode, interpolation, crop)
    except ImgclfError:
        raise
    except Exception as exc:  # noqa: BLE001  (any decoder failure: OSError, SyntaxError, bombs...)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        raise ImgclfError(f"cannot read image {os.fspath(path)!r}: {reason}") from None


def to_model_input(images: np.ndarray, target_size, color_mode: str, interpolation: str = DEFAULT_INTERPOLATION):
    """uint8 images ``(n, h, w, c)`` converted to ``(n, *target_size, channels)`` by
    :func:`~imgclf.data.images.image_to_array` (unchanged when already right)."""
    if images.shape[1:] == (*target_size, channels(color_mode)):
        return images
    return np.stack(
        [
            image_to_array(
                Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a), target_size, color_mode, interpolation
            )
            for a in images
        ]
    )


class ImageParts:
    """The parts of an :class:`ImageSpec` held in ``self.image``, as attributes of their own (for classes that carry
    one: the resolved settings, :class:`~imgclf.predict.predictor.Predictor`)."""

    image: ImageSpec

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` the model takes."""
        return self.image.input_shape

    @property
    def target_size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.image.target_size

    @property
    def color_mode(self) -> str:
        """``rgb`` or ``grayscale``."""
        return self.image.color_mode

    @property
    def interpolation(self) -> str:
        """The resize filter (see :func:`image_to_array`)."""
        return self.image.interpolation


@dataclass(frozen=True)
class ImageSpec:
    """How images are read for a model: ``target_size`` ``(height, width)`` in pixels, ``color_mode`` (``rgb`` or
    ``grayscale``) and the resize filter ``interpolation`` (see :data:`INTERPOLATIONS`).

    One value, made once from the settings (:attr:`imgclf.settings.resolved.Resolved.image`) or read back from a run
    (:meth:`imgclf.runs.record.RunConfig.image`) or an export's ``signature.json``, and carried whole by the
    pipeline, :class:`~imgclf.predict.predictor.Predictor` and the exports to the decoder (:meth:`load`).

    Raises:
        ImgclfError: a ``target_size`` that is not two positive ints, or an unknown color mode or filter.
    """

    target_size: tuple[int, int] = DEFAULT_TARGET_SIZE
    color_mode: str = "rgb"
    interpolation: str = DEFAULT_INTERPOLATION

    def __post_init__(self):
        object.__setattr__(self, "target_size", check_target_size(self.target_size))
        check_color_mode(self.color_mode)
        check_interpolation(self.interpolation)

    @property
    def channels(self) -> int:
        """3 for ``rgb``, 1 for ``grayscale``."""
        return channels(self.color_mode)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of one image as the model takes it."""
        return (*self.target_size, self.channels)

    def load(self, path: str | os.PathLike | bytes, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """:func:`load_image` with this spec: uint8 :attr:`input_shape`."""
        return load_image(path, self.target_size, self.color_mode, self.interpolation, crop)

    def read(self, path: str | os.PathLike, crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """:func:`read_image` with this spec (an unreadable file is an ImgclfError naming it)."""
        return read_image(path, self.target_size, self.color_mode, self.interpolation, crop)

    def to_model_input(self, images: np.ndarray) -> np.ndarray:
        """:func:`to_model_input` with this spec: uint8 ``(n, *input_shape)``."""
        return to_model_input(images, self.target_size, self.color_mode, self.interpolation)

    @classmethod
    def from_dict(cls, values: dict) -> ImageSpec:
        """The spec :meth:`to_dict` wrote (``config.yaml``'s ``resolved``, ``signature.json``).

        Raises:
            ImgclfError: a missing or invalid value.
        """
        try:
            return cls(tuple(values["target_size"]), values["color_mode"], values["interpolation"])
        except (KeyError, TypeError) as exc:
            raise ImgclfError(f"an image spec needs target_size, color_mode and interpolation. Received: "
                              f"{str(values)[:200]} ({type(exc).__name__}: {exc})") from None  # fmt: skip

    def to_dict(self) -> dict:
        """``{"target_size": [h, w], "color_mode", "interpolation"}``, as ``config.yaml`` and ``signature.json``
        record it."""
        return {"target_size": list(self.target_size), "color_mode": self.color_mode,
                "interpolation": self.interpolation}  # fmt: skip
