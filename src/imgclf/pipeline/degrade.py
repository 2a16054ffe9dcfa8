"""Image-quality augmentation: the loss of detail of a photo taken at a lower resolution, and JPEG compression.

A model trained on sharp images loses accuracy on small, compressed photos (another camera, a messaging app): in
``bench/outside_images.py`` a frozen SqueezeNet loses 1.7 points on the validation images shrunk to 128 px, none on
them saved as JPEG quality 75 at full size, and 4.0 points on both together (the upscale to the model's input
enlarges the compression's 8x8 blocks). Training on images degraded the same way teaches the head to ignore it.

The two transforms are those of albumentations' ``Downscale`` and ``ImageCompression``, done with TensorFlow's own
ops (``tf.image.resize`` with ``antialias=True``, ``tf.image.adjust_jpeg_quality``), one image at a time
(sizes differ within a batch) inside the ``tf.data`` pipeline, with stateless random numbers.
"""

from __future__ import annotations

import tensorflow as tf

from imgclf.errors import ImgclfError


def check_jpeg_quality_range(value) -> tuple[int, int]:
    """``(low, high)`` from ``[low, high]`` ints with ``1 <= low <= high <= 100``, or from an int ``q`` (``(q, 100)``).

    Raises:
        ImgclfError: anything else (floats and booleans included).
    """
    pair = (value, 100) if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        low, high = pair
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) and 1 <= low <= high <= 100
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ImgclfError(
            f"jpeg_quality_range must be an int or [low, high] ints with 1 <= low <= high <= 100. Received: {value!r}"
        )
    return low, high


def degrade_batch(images: tf.Tensor, seed: tf.Tensor, downscale_range=None, jpeg_quality_range=None) -> tf.Tensor:
    """Shrink each image to a random fraction of its size and/or re-encode it as JPEG at a random quality, then
    bring it back to its size.

    Args:
        images: uint8 ``(batch, height, width, channels)``, 1 or 3 channels.
        seed: int64 ``(2,)`` stateless seed; the same seed gives the same output.
        downscale_range: ``(low, high)`` with ``0 < low <= high <= 1``: each image is resized (antialiased
            bilinear) to ``round(s * height) x round(s * width)`` pixels (at least 1), ``s`` drawn uniformly from
            the range, and after the JPEG step resized back (bilinear). ``None``: off.
        jpeg_quality_range: ``(low, high)`` ints in ``[1, 100]``: each image is saved and read back as JPEG at a
            quality drawn uniformly from ``low..high`` (at its reduced size when downscaled). ``None``: off.

    Returns:
        uint8 ``(batch, height, width, channels)``, the same shape.
    """
    if downscale_range is None and jpeg_quality_range is None:
        return images
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    n = tf.shape(images)[0]
    scale_seed, jpeg_seed = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2))
    low, high = downscale_range if downscale_range is not None else (1.0, 1.0)
    scales = tf.random.stateless_uniform([n], seed=scale_seed, minval=low, maxval=high)
    q_low, q_high = jpeg_quality_range if jpeg_quality_range is not None else (100, 100)
    qualities = tf.random.stateless_uniform([n], seed=jpeg_seed, minval=q_low, maxval=q_high + 1, dtype=tf.int32)
    full = tf.constant([height, width], tf.float32)

    def one(args):
        image, scale, quality = args
        x = image
        if downscale_range is not None:
            size = tf.maximum(tf.cast(tf.round(scale * full), tf.int32), 1)
            x = _to_uint8(tf.image.resize(x, size, "bilinear", antialias=True))
        if jpeg_quality_range is not None:
            x = tf.image.adjust_jpeg_quality(x, quality)
        if downscale_range is not None:
            x = _to_uint8(tf.image.resize(x, (height, width), "bilinear"))
        return tf.ensure_shape(x, (height, width, channels))

    spec = tf.TensorSpec((height, width, channels), tf.uint8)
    return tf.map_fn(one, (images, scales, qualities), fn_output_signature=spec)


def _to_uint8(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
