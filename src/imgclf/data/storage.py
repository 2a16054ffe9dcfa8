"""Where data lives — a local path, or a URL ``tf.io.gfile`` understands (``gs://``, ``s3://``, ``ram://``) — and
what every reader of it needs: joining a name on, opening (TensorFlow imported only for a URL) and the SHA-256 of a
file, which manifests, journals, caches and the fast copy check their files by."""

from __future__ import annotations

import hashlib
import os


def is_url(path) -> bool:
    """True for ``scheme://...`` paths (read through ``tf.io.gfile``)."""
    return "://" in str(path)


def join(folder, name: str) -> str:
    """``folder/name`` for a local path or a URL."""
    return f"{str(folder).rstrip('/')}/{name}" if is_url(folder) else os.path.join(os.fspath(folder), name)


def open_file(path, mode: str = "r"):
    """Open a local file, or a URL through ``tf.io.gfile`` (TensorFlow imported only then).

    Raises:
        OSError: it cannot be opened.
    """
    if not is_url(path):
        return open(path, mode)
    import tensorflow as tf

    try:
        return tf.io.gfile.GFile(str(path), mode)
    except tf.errors.OpError as exc:
        raise OSError(str(exc)) from None


def read_text(path) -> str:
    """A text file's content, local or through ``tf.io.gfile``.

    Raises:
        OSError: it cannot be read.
    """
    try:
        with open_file(path) as f:
            return f.read()
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001  (tf.errors.OpError raised while reading a URL)
        raise OSError(str(exc)) from None


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file (a local path, or a URL read through ``tf.io.gfile``), read in 1 MiB chunks.

    Raises:
        OSError: it cannot be read.
    """
    digest = hashlib.sha256()
    with open_file(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
