"""What a client uploads, decoded as training reads files, and refused in one ``{"error"}`` line when it cannot be
used: empty, not an image, truncated, a decompression bomb, or more pixels than one request may declare. Shared by
``imgclf serve`` and the studio's try page."""

import io
import warnings

import numpy as np

from imgclf.errors import ImgclfError
from imgclf.predict.predictor import Predictor

#: Most pixels (width x height, summed over its files) one request may declare: 110 PNGs of 8,000 x 8,000 pixels
#: fit in 9.5 MB and took 48 s to decode. 64 M pixels is ~250 phone photos at a 0.25-megapixel preview size, or
#: five 12-megapixel photos.
MAX_REQUEST_PIXELS = 64_000_000


class UploadError(ImgclfError):
    """A client's upload that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, name: str, predictor: Predictor) -> np.ndarray:
    """Decode one uploaded image as training reads files (:func:`imgclf.data.images.load_image`).

    Returns:
        uint8 ``(height, width, channels)`` at the model's input size.

    Raises:
        UploadError: empty, not an image, truncated or corrupt, or a decompression bomb (Pillow's limit).
    """
    from PIL import Image

    if not data:
        raise UploadError(f"file {name!r} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return predictor.image.load(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(f"file {name!r} is too large an image to decode safely: {exc}") from None
    except Exception as exc:  # noqa: BLE001  (any decoder failure is the client's file, not a server error)
        kind = "not an image" if "cannot identify" in str(exc) else "a truncated or corrupt image"
        raise UploadError(f"file {name!r} is {kind} ({type(exc).__name__}: {exc}).") from None


def decode_uploads(uploads: list[tuple[str, bytes]], predictor: Predictor,
                   max_pixels: int = MAX_REQUEST_PIXELS) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """Decode one request's ``(name, bytes)`` uploads (:func:`decode_upload`) once the pixels they declare, summed,
    are within ``max_pixels`` (their headers are read first; nothing is decoded otherwise).

    Returns:
        ``(names, images)``, images uint8 ``(n, height, width, channels)`` at the model's input size.

    Raises:
        UploadError: 413 past ``max_pixels``; 400 for a file :func:`decode_upload` refuses.
    """
    from PIL import Image

    declared = 0
    for name, data in uploads:
        try:
            with Image.open(io.BytesIO(data)) as image:
                declared += image.width * image.height
        except Exception:  # noqa: BLE001  (not an image: decode_upload names what is wrong below)
            continue
        if declared > max_pixels:
            raise UploadError(
                f"the images of one request may hold at most {max_pixels:,} pixels; these declare more "
                f"({declared:,} by file {name!r}). Send fewer or smaller images per request.",
                status=413,
            )
    return [n for n, _ in uploads], np.stack([decode_upload(data, name, predictor) for name, data in uploads])


def gradcam_png(predictor: Predictor, image: np.ndarray) -> bytes:
    """PNG bytes of ``image`` (uint8 ``(height, width, channels)`` at the model's input size) with the Grad-CAM
    heat-map of the predicted class over it (:func:`imgclf.explain.gradcam`; Selvaraju et al. 2017). Needs a Keras
    model in ``predictor``."""
    from PIL import Image

    from imgclf.explain import gradcam
    from imgclf.plotting import heatmap_overlay

    maps, _ = gradcam(predictor.model, image[None])
    out = io.BytesIO()
    Image.fromarray(heatmap_overlay(image, maps[0])).save(out, format="PNG")
    return out.getvalue()
