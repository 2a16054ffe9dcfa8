"""On-the-fly augmentation of training batches, with ``ImageDataGenerator``'s names and units.

The geometric transforms (rotation, shift, shear, zoom, flips) of each image are composed into one affine matrix
and applied by a single warp (bilinear, or nearest with ``interpolation_order=0``), so each image is interpolated
once, not once per transform. The warp is a handful of gathers and multiply-adds compiled by XLA into one loop
over the output pixels: under a third of the CPU of TensorFlow's ``ImageProjectiveTransformV3`` kernel for the
same result (``bench/augment_warp.py``), which matters on a CPU where augmentation and training share the cores.
Brightness and channel shift follow, then the image-quality changes of :mod:`imgclf.pipeline.degrade` (downscale,
JPEG). Everything runs on whole batches inside the ``tf.data`` pipeline, after the decoded-image cache, with
stateless random numbers drawn from a per-batch seed: the same ``seed`` gives the same augmented stream.

Source of the option names, units and presets: Keras' ``ImageDataGenerator`` documentation and the
course's Week 2 notebook (``rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode='nearest'``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields

import tensorflow as tf

from imgclf.errors import ImgclfError, check_one_of
from imgclf.pipeline.degrade import check_jpeg_quality_range, degrade_batch

FILL_MODES = ("nearest", "reflect", "wrap", "constant")
#: Named settings for ``augment=``: ``none`` and the course's exact ``ImageDataGenerator`` arguments.
PRESETS = {
    "none": {},
    "course": {
        "rotation_range": 40,
        "width_shift_range": 0.2,
        "height_shift_range": 0.2,
        "shear_range": 0.2,
        "zoom_range": 0.2,
        "horizontal_flip": True,
        "fill_mode": "nearest",
    },
}


def _number(name, value, *, low=0.0, high=math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value < high):
        raise ImgclfError(f"{name} must be a number in [{low}, {high}). Received: {value!r}")
    return float(value)


def _pair(name, value, *, scalar=None) -> tuple[float, float]:
    """A ``[low, high]`` pair; a scalar ``z`` becomes ``scalar(z)`` when allowed."""
    if scalar is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = scalar(_number(name, value, high=1.0 + 1e-9))
    try:
        low, high = (float(v) for v in value)
        ok = 0 < low <= high < math.inf
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ImgclfError(f"{name} must be a float or [low, high] with 0 < low <= high. Received: {value!r}")
    return low, high


@dataclass(frozen=True)
class Augmentation:
    """Random changes applied to training images, as ``ImageDataGenerator`` names them.

    Args:
        rotation_range: rotate by an angle drawn from [-r, r] degrees (counter-clockwise when positive).
        width_shift_range: shift left/right by up to this fraction of the width, or by up to this many
            pixels when >= 1.
        height_shift_range: the same for up/down and the height.
        shear_range: shear by an angle drawn from [-s, s] degrees: a pixel ``dy`` rows below the centre
            moves ``dy * tan(angle)`` pixels to the right.
        zoom_range: scale factors drawn from [low, high] for width and height independently; a float
            ``z`` means [1 - z, 1 + z]. As in Keras, a factor below 1 zooms in (the image looks larger).
        horizontal_flip: mirror left-right with probability 0.5.
        vertical_flip: mirror top-bottom with probability 0.5.
        fill_mode: how points outside the image are filled: ``nearest`` (aaaa|abcd|dddd), ``reflect``
            (dcba|abcd|dcba), ``wrap`` (abcd|abcd|abcd) or ``constant`` (``cval``).
        cval: fill value (0-255) for ``fill_mode="constant"``.
        brightness_range: multiply pixel values by a factor drawn from [low, high] (``None``: off).
        channel_shift_range: add one value drawn from [-r, r] (0-255 scale) to every channel, clipped to
            the image's own min and max, as ``ImageDataGenerator.apply_channel_shift`` does.
        interpolation_order: 1 (default, bilinear, as ``ImageDataGenerator``) or 0 (nearest neighbour:
            ~60 % of the CPU, blockier edges; torchvision's ``RandomAffine`` default).
        downscale_range: ``[low, high]`` with ``0 < low <= high <= 1`` (a float ``s`` means ``[s, 1]``):
            shrink each image to a fraction of its size drawn from the range, then back (a photo of lower
            resolution; albumentations' ``Downscale``; see :mod:`imgclf.pipeline.degrade`). ``None``: off.
        jpeg_quality_range: ``[low, high]`` ints in ``[1, 100]`` (an int ``q`` means ``[q, 100]``): re-encode
            each image as JPEG at a quality drawn from the range (albumentations' ``ImageCompression``), after
            the downscale. ``None``: off.

    Raises:
        ImgclfError: a value is negative, not a number, or ``fill_mode`` is unknown.
    """

    rotation_range: float = 0.0
    width_shift_range: float = 0.0
    height_shift_range: float = 0.0
    shear_range: float = 0.0
    zoom_range: tuple[float, float] = (1.0, 1.0)
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: str = "nearest"
    cval: float = 0.0
    brightness_range: tuple[float, float] | None = None
    channel_shift_range: float = 0.0
    interpolation_order: int = 1
    downscale_range: tuple[float, float] | None = None
    jpeg_quality_range: tuple[int, int] | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        set_("rotation_range", _number("rotation_range", self.rotation_range, high=360.0 + 1e-9))
        set_("width_shift_range", _number("width_shift_range", self.width_shift_range))
        set_("height_shift_range", _number("height_shift_range", self.height_shift_range))
        set_("shear_range", _number("shear_range", self.shear_range, high=90.0))
        set_("zoom_range", _pair("zoom_range", self.zoom_range, scalar=lambda z: (1.0 - z, 1.0 + z) if z else (1, 1)))
        for flag in ("horizontal_flip", "vertical_flip"):
            if not isinstance(getattr(self, flag), bool):
                raise ImgclfError(f"{flag} must be true or false. Received: {getattr(self, flag)!r}")
        check_one_of("fill_mode", self.fill_mode, list(FILL_MODES))
        set_("cval", _number("cval", self.cval, high=256.0))
        if self.brightness_range is not None:
            set_("brightness_range", _pair("brightness_range", self.brightness_range))
        set_("channel_shift_range", _number("channel_shift_range", self.channel_shift_range, high=256.0))
        if self.interpolation_order not in (0, 1) or isinstance(self.interpolation_order, bool):
            raise ImgclfError(
                f"interpolation_order must be 0 (nearest) or 1 (bilinear). Received: {self.interpolation_order!r}"
            )
        if self.downscale_range is not None:
            low, high = _pair("downscale_range", self.downscale_range, scalar=lambda s: (s, 1.0))
            if high > 1:
                raise ImgclfError(f"downscale_range must lie in (0, 1]. Received: {self.downscale_range!r}")
            set_("downscale_range", (low, high))
        if self.jpeg_quality_range is not None:
            set_("jpeg_quality_range", check_jpeg_quality_range(self.jpeg_quality_range))

    @property
    def geometric(self) -> bool:
        """True when any rotation, shift, shear, zoom or flip is on (one warp per image is needed)."""
        return bool(
            self.rotation_range
            or self.width_shift_range
            or self.height_shift_range
            or self.shear_range
            or self.zoom_range != (1.0, 1.0)
            or self.horizontal_flip
            or self.vertical_flip
        )

    @property
    def is_identity(self) -> bool:
        """True when the settings change nothing."""
        return not (self.geometric or self.brightness_range is not None or self.channel_shift_range or self.degrades)

    @property
    def degrades(self) -> bool:
        """True when images are downscaled or JPEG re-encoded (:mod:`imgclf.pipeline.degrade`)."""
        return self.downscale_range is not None or self.jpeg_quality_range is not None

    def changes(self) -> dict:
        """The settings that differ from the defaults (no augmentation), as in :meth:`to_dict`."""
        default = Augmentation().to_dict()
        return {k: v for k, v in self.to_dict().items() if v != default[k]}

    def to_dict(self) -> dict:
        """Plain dict (lists, not tuples) for YAML/JSON."""
        d = asdict(self)
        d["zoom_range"] = list(self.zoom_range)
        for name in ("brightness_range", "downscale_range", "jpeg_quality_range"):
            d[name] = list(d[name]) if d[name] is not None else None
        return d


def make_augmentation(value=None, **overrides) -> Augmentation:
    """An :class:`Augmentation` from a preset name, a dict of settings or an ``Augmentation``.

    Args:
        value: ``None`` or ``"none"`` (no augmentation), ``"course"`` (the course's settings), a dict of
            :class:`Augmentation` fields, or an :class:`Augmentation`.
        **overrides: fields that replace the preset's or dict's values (``None`` values are ignored).

    Raises:
        ImgclfError: unknown preset or field name, or a value out of range.
    """
    if isinstance(value, Augmentation):
        base = value.to_dict()
    elif value is None:
        base = {}
    elif isinstance(value, str):
        if value not in PRESETS:
            raise ImgclfError(f"augment must be one of {list(PRESETS)} or a dict of settings. Received: {value!r}")
        base = dict(PRESETS[value])
    elif isinstance(value, dict):
        base = dict(value)
    else:
        raise ImgclfError(f"augment must be a preset name, a dict or an Augmentation. Received: {value!r}")
    base.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in fields(Augmentation)}
    unknown = sorted(set(base) - names)
    if unknown:
        raise ImgclfError(f"unknown augmentation setting {unknown[0]!r}; expected one of {sorted(names)}.")
    return Augmentation(**base)


# -- the transform -----------------------------------------------------------------------------------


def affine_matrices(
    height: int,
    width: int,
    *,
    theta,
    tx,
    ty,
    shear,
    zx,
    zy,
    flip_h,
    flip_v,
) -> tf.Tensor:
    """Forward affine matrices, one per image, in pixel coordinates (x = column, y = row, y down).

    The image centre stays put; a point ``p`` of the input lands at ``M @ p`` in the output, with
    ``M = shift · rotate · shear · zoom · flip`` about the centre.

    Args:
        height, width: image size in pixels.
        theta: rotation, degrees counter-clockwise as displayed; float ``(batch,)``.
        tx, ty: shift right and down in pixels; float ``(batch,)``.
        shear: shear angle in degrees; float ``(batch,)``.
        zx, zy: zoom factors for width and height (``< 1`` enlarges, as in Keras); float ``(batch,)``.
        flip_h, flip_v: mirror left-right / top-bottom; bool ``(batch,)``.

    Returns:
        float32 ``(batch, 3, 3)``.
    """
    theta, tx, ty, shear, zx, zy = (tf.cast(v, tf.float32) for v in (theta, tx, ty, shear, zx, zy))
    one, zero = tf.ones_like(theta), tf.zeros_like(theta)

    def mat(*rows):
        return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)

    rad, srad = theta * (math.pi / 180.0), shear * (math.pi / 180.0)
    cos, sin = tf.cos(rad), tf.sin(rad)
    fx = tf.where(tf.cast(flip_h, tf.bool), -one, one)
    fy = tf.where(tf.cast(flip_v, tf.bool), -one, one)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    to_centre = mat((one, zero, -cx * one), (zero, one, -cy * one), (zero, zero, one))
    back = mat((one, zero, cx * one), (zero, one, cy * one), (zero, zero, one))
    flip = mat((fx, zero, zero), (zero, fy, zero), (zero, zero, one))
    zoom = mat((1.0 / zx, zero, zero), (zero, 1.0 / zy, zero), (zero, zero, one))
    skew = mat((one, tf.tan(srad), zero), (zero, one, zero), (zero, zero, one))
    rotate = mat((cos, sin, zero), (-sin, cos, zero), (zero, zero, one))
    shift = mat((one, zero, tx), (zero, one, ty), (zero, zero, one))
    m = back
    for step in (shift, rotate, skew, zoom, flip, to_centre):
        m = tf.linalg.matmul(m, step)
    return m


def _fill_index(i: tf.Tensor, size: int, fill_mode: str) -> tf.Tensor:
    """Map integer pixel indices ``i`` (any, possibly outside ``[0, size)``) into the image for ``fill_mode``:
    ``nearest`` clamps (aaaa|abcd|dddd), ``wrap`` is periodic (abcd|abcd|abcd), ``reflect`` mirrors about the
    edge (dcba|abcd|dcba, scipy's ``reflect``); ``constant`` clamps too, and :func:`_warp` masks those pixels."""
    if fill_mode == "wrap":
        return tf.math.floormod(i, size)
    if fill_mode == "reflect":
        m = tf.math.floormod(i, 2 * size)
        return tf.where(m < size, m, 2 * size - 1 - m)
    return tf.clip_by_value(i, 0, size - 1)


def _warp(images, transforms, cval, fill_mode: str, order: int):
    """The warp itself: ``images`` ``(b, h, w, c)`` any real dtype, ``transforms`` float32 ``(b, 8)``
    (output pixel → input point, as ``ImageProjectiveTransformV3`` takes them); float32 out."""
    b, h, w, c = tf.unstack(tf.shape(images))
    yy, xx = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32), indexing="ij")
    t = [tf.reshape(transforms[:, j], (-1, 1, 1)) for j in range(8)]
    k = t[6] * xx + t[7] * yy + 1.0
    sx = (t[0] * xx + t[1] * yy + t[2]) / k
    sy = (t[3] * xx + t[4] * yy + t[5]) / k
    flat = tf.reshape(images, (-1, c))
    base = tf.reshape(tf.range(b) * (h * w), (-1, 1, 1))

    def sample(iy, ix):
        pixels = tf.cast(tf.gather(flat, base + _fill_index(iy, h, fill_mode) * w + _fill_index(ix, w, fill_mode)),
                         tf.float32)  # fmt: skip
        if fill_mode == "constant":
            inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
            pixels = tf.where(inside[..., None], pixels, cval)
        return pixels

    if order == 0:
        return sample(tf.cast(tf.round(sy), tf.int32), tf.cast(tf.round(sx), tf.int32))
    x0, y0 = tf.floor(sx), tf.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    top = sample(y0, x0) * (1.0 - fx) + sample(y0, x0 + 1) * fx
    bottom = sample(y0 + 1, x0) * (1.0 - fx) + sample(y0 + 1, x0 + 1) * fx
    return top * (1.0 - fy) + bottom * fy


@functools.cache
def _compiled_warp(fill_mode: str, order: int):
    """:func:`_warp` for one fill mode and order, compiled by XLA (one per process, shapes traced lazily)."""
    return tf.function(
        lambda images, transforms, cval: _warp(images, transforms, cval, fill_mode, order),
        jit_compile=True,
        reduce_retracing=True,
    )


def warp(images: tf.Tensor, matrices: tf.Tensor, fill_mode: str = "nearest", cval: float = 0.0,
         order: int = 1) -> tf.Tensor:  # fmt: skip
    """Apply forward affine ``matrices`` (see :func:`affine_matrices`) with one warp each.

    Each output pixel is mapped back through the inverse matrix to a point of the input, which is sampled
    bilinearly from its four neighbours (``order=1``, as ``scipy.ndimage.affine_transform`` in
    ``ImageDataGenerator``) or from the nearest pixel (``order=0``); neighbours outside the image come from
    ``fill_mode`` (see :class:`Augmentation`).

    Args:
        images: ``(batch, height, width, channels)``, any real dtype (uint8 is cheapest).
        matrices: float32 ``(batch, 3, 3)``.
        fill_mode: ``nearest``, ``reflect``, ``wrap`` or ``constant``.
        cval: fill value for ``constant``.
        order: 1 bilinear, 0 nearest.

    Returns:
        float32 ``(batch, height, width, channels)``.
    """
    inverse = tf.linalg.inv(tf.cast(matrices, tf.float32))  # the warp maps each output pixel back
    inverse = inverse / inverse[:, 2:3, 2:3]
    transforms = tf.reshape(inverse, (-1, 9))[:, :8]
    return _compiled_warp(fill_mode, order)(images, transforms, tf.constant(float(cval), tf.float32))


def augment_batch(images: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Randomly augment a batch of images.

    Args:
        images: uint8 ``(batch, height, width, channels)``.
        aug: the settings.
        seed: int64 ``(2,)`` stateless seed; the same seed gives the same output.

    Returns:
        uint8 ``(batch, height, width, channels)``, same shape.
    """
    if aug.is_identity:
        return images
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=11)
    n = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]

    def uniform(i, low, high):
        return tf.random.stateless_uniform([n], seed=seeds[i], minval=low, maxval=high)

    def shift(r, size, i):
        span = r * size if r < 1 else r
        return uniform(i, -span, span) if r else tf.zeros([n])

    x = images
    if aug.geometric:
        matrices = affine_matrices(
            height,
            width,
            theta=uniform(0, -aug.rotation_range, aug.rotation_range),
            tx=shift(aug.width_shift_range, width, 1),
            ty=shift(aug.height_shift_range, height, 2),
            shear=uniform(3, -aug.shear_range, aug.shear_range),
            zx=uniform(4, *aug.zoom_range),
            zy=uniform(5, *aug.zoom_range),
            flip_h=(uniform(6, 0.0, 1.0) < 0.5) if aug.horizontal_flip else tf.zeros([n], tf.bool),
            flip_v=(uniform(7, 0.0, 1.0) < 0.5) if aug.vertical_flip else tf.zeros([n], tf.bool),
        )
        x = warp(x, matrices, aug.fill_mode, aug.cval, aug.interpolation_order)
    x = tf.cast(x, tf.float32)
    if aug.channel_shift_range:
        r = aug.channel_shift_range
        low = tf.reduce_min(x, axis=[1, 2, 3], keepdims=True)
        high = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
        x = tf.clip_by_value(x + tf.reshape(uniform(8, -r, r), (-1, 1, 1, 1)), low, high)
    if aug.brightness_range is not None:
        x = x * tf.reshape(uniform(9, *aug.brightness_range), (-1, 1, 1, 1))
    x = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
    return degrade_batch(x, seeds[10], aug.downscale_range, aug.jpeg_quality_range)
