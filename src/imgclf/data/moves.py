"""Moving a dataset's files safely: one writer at a time, never over another file, paths read back confined.

Every command that moves files of a dataset (``relabel`` and its undo, ``doctor --fix`` / ``--restore``,
``triage --accept``, the studio's capture) does it through this module:

- :func:`locked` holds an exclusive ``fcntl.flock`` on the DATA folder itself (no lock file is written) for the
  whole batch, so two writers never interleave their checks, moves and manifest writes;
- :func:`move_file` never replaces a file: a hard link to the new name (which fails when the name is taken) and
  then the old name removed; across file systems a copy to a hidden temporary name in the target folder, made
  durable, then linked to its name — a kill -9 part-way leaves the original intact and at most a
  ``.NAME.imgclf-partial-*`` file, never a half-written picture under a real name;
- :func:`confined` turns a path read back from a manifest into a path inside the folder it belongs to, refusing
  absolute paths, ``..`` and links leading out;
- :func:`sign` / :func:`signature_ok` put an HMAC-SHA256 (RFC 2104) keyed by a secret in ``$IMGCLF_HOME`` on the
  moves whose other end lies outside DATA (an inbox filed into it), so a manifest that came with a downloaded
  dataset cannot make an undo write anywhere on disk.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from imgclf.data.cache import imgclf_home
from imgclf.errors import ImgclfError

#: Seconds a writer waits for another one to finish before giving up (a 3,000-file relabel takes ~2 s).
LOCK_WAIT = 60.0
PARTIAL = ".imgclf-partial-"
KEY_NAME = "manifest.key"


@contextmanager
def locked(data: str | os.PathLike, wait: float = LOCK_WAIT):
    """Hold the dataset's writer lock (an exclusive ``flock`` on the folder DATA) inside the block.

    Raises:
        ImgclfError: DATA is not a folder, or another imgclf command kept the lock for ``wait`` seconds.
    """
    try:
        fd = os.open(data, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ImgclfError(f"cannot change {str(data)!r}: {exc.strerror}. Nothing was moved.") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ImgclfError(
                        f"another imgclf command has been changing {str(data)!r} for over {wait:.0f} s: try again "
                        "when it is done. Nothing was moved."
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _durable_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to the free name ``target`` through a hidden temporary file in its folder."""
    tmp = target.with_name(f".{target.name}{PARTIAL}{secrets.token_hex(4)}")
    try:
        with open(source, "rb") as src, open(tmp, "xb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copystat(source, tmp)
        try:
            os.link(tmp, target)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise FileExistsError(errno.EEXIST, "the name is taken", str(target)) from None
            if os.path.lexists(target):  # a file system without hard links: checked under the lock, then renamed
                raise FileExistsError(errno.EEXIST, "the name is taken", str(target)) from None
            os.rename(tmp, target)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def move_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Move the regular file ``source`` to ``target``, which must be free: never replaces anything.

    Raises:
        FileExistsError: ``target`` exists (nothing changed).
        OSError: the move failed (the original is kept).
    """
    source, target = Path(source), Path(target)
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOTSUP):
            raise
        _durable_copy(source, target)  # another file system (or no hard links): copy, then drop the original
    os.unlink(source)


def partials(target: str | os.PathLike) -> list[Path]:
    """The temporary files an interrupted :func:`move_file` into ``target`` left beside it."""
    target = Path(target)
    return sorted(target.parent.glob(f".{target.name}{PARTIAL}*")) if target.parent.is_dir() else []


def confined(root: str | os.PathLike, rel, what: str, *, under: str | None = None) -> Path:
    """``root / rel`` for a relative path read back from a file imgclf wrote, when it stays inside ``root`` (and
    inside ``root/under`` when given), following linked folders: never an absolute path, ``..``, or a folder link
    leading out. The last part is the name itself (a move renames it, whatever a link of that name points to).

    Raises:
        ImgclfError: ``rel`` is not such a path (``what`` names where it was read).
    """
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or "\x00" in rel:
        raise ImgclfError(f"{what} names {rel!r}: expected a path relative to {str(root)!r}. Nothing was moved.")
    parts = Path(rel).parts
    if not parts or ".." in parts or (under is not None and parts[0] != under):
        raise ImgclfError(f"{what} names {rel!r}, outside {str(Path(root) / (under or ''))!r}. Nothing was moved.")
    base = os.path.realpath(Path(root) / under) if under else os.path.realpath(root)
    real = os.path.join(os.path.realpath((Path(root) / rel).parent), Path(rel).name)
    if not real.startswith(base + os.sep):
        raise ImgclfError(f"{what} names {rel!r}, which leads out of {base!r}. Nothing was moved.")
    return Path(root) / rel


def _key() -> bytes:
    """This user's secret for manifests (32 random bytes in ``$IMGCLF_HOME/manifest.key``, made on first use)."""
    path = imgclf_home() / KEY_NAME
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def sign(payload) -> str:
    """HMAC-SHA256 (hex) of ``payload`` (JSON-serialisable, keys sorted) under this user's manifest key."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=True).encode()
    return hmac.new(_key(), text, hashlib.sha256).hexdigest()


def signature_ok(payload, signature) -> bool:
    """True when ``signature`` is :func:`sign` of ``payload`` by this user (compared in constant time)."""
    return isinstance(signature, str) and hmac.compare_digest(sign(payload), signature)


__all__ = ["locked", "move_file", "partials", "confined", "sign", "signature_ok"]
