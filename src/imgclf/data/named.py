"""Named datasets: a registry (``registry.yaml``), checksummed downloads into a cache, safe unpacking.

A dataset's files are downloaded once into ``<home>/downloads/`` (``home`` is ``$IMGCLF_HOME`` or
``~/.cache/imgclf``, or ``data_home=``), checked against their size and SHA-256, unpacked into a temporary
folder and renamed into ``<home>/datasets/<name>/`` in one step, so a failure never leaves half a dataset.
Offline, a dataset already in the cache needs nothing, and ``source=`` (``--from``) takes a local archive
or folder instead of the network.

Unpacking rejects absolute paths, ``..`` components and links (zip-slip), and stops when the unpacked size
passes ``max_bytes`` (zip bombs).
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

import yaml

from imgclf import _io
from imgclf._io import atomic_dir, is_complete
from imgclf.data.cache import imgclf_home
from imgclf.data.packed import is_packed
from imgclf.data.storage import is_url, sha256_of
from imgclf.errors import ImgclfError

#: Unpacked bytes above which extraction stops (zip-bomb guard), unless told otherwise.
MAX_BYTES = 8 * 2**30
#: Seconds a download may wait for the server before failing.
TIMEOUT = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One archive of a dataset: where to get it, what it must be, and where it goes.

    Attributes:
        urls: download addresses, tried in order.
        sha256: expected SHA-256 (hex), or ``None`` when none is published (the first download's is
            recorded in the cache and later copies must match it).
        size: expected size in bytes, or ``None``.
        into: sub-folder of the dataset folder to unpack into (``""``: the folder itself).
    """

    urls: tuple[str, ...]
    sha256: str | None = None
    size: int | None = None
    into: str = ""

    @property
    def filename(self) -> str:
        return PurePosixPath(self.urls[0].split("?")[0]).name


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry (see ``registry.yaml``)."""

    name: str
    description: str
    layout: str
    licence: str = ""
    citation: str = ""
    classes: tuple[str, ...] | None = None
    files: tuple[RemoteFile, ...] = ()
    instructions: str = ""
    builtin: bool = False
    extra: dict = field(default_factory=dict)


def load_registry() -> dict[str, DatasetSpec]:
    """The named datasets, from the package's ``registry.yaml``."""
    raw = yaml.safe_load(resources.files("imgclf.data").joinpath("registry.yaml").read_text(encoding="utf-8"))
    specs = {}
    for name, entry in raw.items():
        files = tuple(
            RemoteFile(tuple(f["urls"]), f.get("sha256"), f.get("size"), f.get("into") or "")
            for f in entry.get("files") or []
        )
        classes = tuple(entry["classes"]) if entry.get("classes") else None
        specs[name] = DatasetSpec(
            name, entry["description"], entry["layout"], entry.get("licence", ""), entry.get("citation", ""),
            classes, files, entry.get("instructions", ""), bool(entry.get("builtin")),
        )  # fmt: skip
    return specs


def get_spec(name: str, registry: dict[str, DatasetSpec] | None = None) -> DatasetSpec:
    """The registry entry ``name``.

    Raises:
        ImgclfError: unknown name.
    """
    registry = registry if registry is not None else load_registry()
    if name not in registry:
        raise ImgclfError(f"dataset must be one of {sorted(registry)}. Received: {name!r}")
    return registry[name]


def dataset_dir(name: str, data_home: str | os.PathLike | None = None) -> Path:
    """Where dataset ``name`` lives in the cache (whether or not it is there yet)."""
    return Path(data_home or imgclf_home()) / "datasets" / name


# -- downloading ---------------------------------------------------------------------------------------


def _fetch(url: str, target: Path, expected_size: int | None, progress) -> None:
    """Stream ``url`` into ``target``; fail when the transfer stops short of its announced length."""
    request = urllib.request.Request(url, headers={"User-Agent": "imgclf"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(target, "wb") as out:
        announced = response.headers.get("Content-Length")
        total = int(announced) if announced is not None else expected_size
        done = 0
        if progress is not None:
            progress(0, total)
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise ImgclfError(f"download of {url} was interrupted after {done} bytes: {exc}") from None
            if not chunk:
                break
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    if announced is not None and done != int(announced):
        raise ImgclfError(f"download of {url} was interrupted: got {done} of {announced} bytes.")


def _verify(path: Path, remote: RemoteFile, pinned: Path) -> str | None:
    """Check ``path`` against the published size and SHA-256, or the one pinned on first use.

    Returns:
        The file's SHA-256 when nothing was known to check it against (for :func:`pin_checksum` to record once
        the file has proved itself), else ``None``.
    """
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        raise ImgclfError(f"{remote.filename} has {size} bytes, expected {remote.size}: not the published file.")
    actual = sha256_of(path)
    expected = remote.sha256 or (pinned.read_text().strip() if pinned.is_file() else None)
    if expected is not None and actual != expected:
        raise ImgclfError(
            f"{remote.filename} failed its checksum: sha256 {actual}, expected {expected}. "
            "The download is corrupt or the file has changed; nothing was unpacked."
        )
    return actual if expected is None else None


def _pin_path(remote: RemoteFile, home: Path) -> Path:
    return home / "downloads" / f"{remote.filename}.sha256"


def pin_checksum(remote: RemoteFile, home: Path, digest: str) -> None:
    """Trust on first use: record ``digest`` as the one later copies of ``remote`` must match. Called only once
    the file has unpacked into a valid dataset, so a garbage or rejected archive is never trusted."""
    _io.write_text(_pin_path(remote, home), digest + "\n")


def fetch_file(remote: RemoteFile, home: Path, source: Path | None = None, progress=None) -> Path:
    """A verified local copy of ``remote``: from ``source`` (a local file), the cache, or the network. Without a
    published checksum, the copy's is pinned now (trust on first use; a dataset archive is pinned only after it
    unpacked, see :func:`download`).

    Raises:
        ImgclfError: every URL failed, the transfer was cut short, or the size/checksum is wrong (the bad
            file is removed).
    """
    path, digest = _fetch_verified(remote, home, source, progress)
    if digest is not None:
        pin_checksum(remote, home, digest)
    return path


def _fetch_verified(remote: RemoteFile, home: Path, source: Path | None, progress) -> tuple[Path, str | None]:
    """:func:`fetch_file` without pinning: ``(path, digest to pin or None)``."""
    downloads = home / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    cached = downloads / remote.filename
    pinned = _pin_path(remote, home)
    if source is not None:
        return source, _verify(source, remote, pinned)
    if cached.is_file():
        return cached, _verify(cached, remote, pinned)
    errors = []
    for url in remote.urls:
        fd, tmp = tempfile.mkstemp(prefix=f".{remote.filename}.", suffix=".part", dir=downloads)
        os.close(fd)
        try:
            _fetch(url, Path(tmp), remote.size, progress)
            digest = _verify(Path(tmp), remote, pinned)
            os.replace(tmp, cached)
            return cached, digest
        except (urllib.error.URLError, OSError, ImgclfError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            if isinstance(exc, ImgclfError) and "checksum" in str(exc):
                raise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise ImgclfError(
        f"cannot download {remote.filename} ({'; '.join(errors)}). Offline? Give source= a local archive or folder."
    )


# -- unpacking -----------------------------------------------------------------------------------------


def _safe_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise ImgclfError(f"unsafe path {name!r} in {archive.name}: refusing to unpack (zip-slip).")
    return path


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, max_bytes: int = MAX_BYTES) -> None:
    """Unpack a zip or tar archive into ``dest`` safely.

    Raises:
        ImgclfError: not an archive; an entry has an absolute path, a ``..`` component or is a link
            (zip-slip); or the unpacked size would pass ``max_bytes`` (zip bomb).
    """
    archive, dest = Path(archive), Path(dest)
    total = 0

    def count(size: int) -> None:
        nonlocal total
        total += size
        if total > max_bytes:
            raise ImgclfError(f"{archive.name} unpacks to more than {max_bytes} bytes: refusing (zip bomb?).")

    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                rel = _safe_name(info.filename, archive)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise ImgclfError(f"link {info.filename!r} in {archive.name}: refusing to unpack.")
                if info.is_dir():
                    (dest / rel).mkdir(parents=True, exist_ok=True)
                    continue
                count(info.file_size)
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest / rel, "wb") as out:
                    written = 0
                    for chunk in iter(lambda: src.read(_CHUNK), b""):
                        written += len(chunk)
                        if written > info.file_size:  # a header that lies about the size
                            count(written - info.file_size)
                        out.write(chunk)
        return
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                _safe_name(member.name, archive)
                if member.issym() or member.islnk():
                    raise ImgclfError(f"link {member.name!r} in {archive.name}: refusing to unpack.")
                count(member.size)
            tf.extractall(dest, filter="data")
        return
    raise ImgclfError(f"{archive.name} is not a zip or tar archive.")


# -- the public operations -----------------------------------------------------------------------------


def download(
    name: str,
    data_home: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    registry: dict[str, DatasetSpec] | None = None,
    progress=None,
    max_bytes: int = MAX_BYTES,
) -> Path:
    """Make dataset ``name`` ready in the cache and return its folder.

    Args:
        name: a registry name (``imgclf datasets list``).
        data_home: cache folder (default ``$IMGCLF_HOME`` or ``~/.cache/imgclf``).
        source: a local archive (for a one-file dataset) or folder (its archives by file name, or the
            dataset itself unpacked) to use instead of the network.
        registry: the registry to read (default the package's).
        progress: optional callable ``(bytes_done, bytes_total_or_None)``.
        max_bytes: unpacked-size limit per archive.

    Returns:
        ``<home>/datasets/<name>``. An already complete copy is returned untouched.

    Raises:
        ImgclfError: unknown name; no source and no network; size or checksum mismatch; unsafe archive;
            a dataset that can only come from ``source`` (``sign_mnist``) without one.
    """
    spec = get_spec(name, registry)
    home = Path(data_home or imgclf_home())
    final = dataset_dir(name, home)
    if spec.builtin:
        from imgclf.data.demo import write_digits

        return write_digits(final)
    if is_complete(final):
        return final
    source = Path(source).expanduser() if source is not None else None
    if source is not None and not source.exists():
        raise ImgclfError(f"source path does not exist. Received: {str(source)!r}")
    if not spec.files and source is None:
        raise ImgclfError(f"{name} cannot be downloaded automatically. {spec.instructions}")
    pins = []  # (remote, digest, cached copy): trusted only once the dataset has unpacked and proved valid
    try:
        with atomic_dir(final, name) as staging:
            if source is not None and source.is_dir() and not any((source / f.filename).is_file() for f in spec.files):
                shutil.copytree(source, staging, dirs_exist_ok=True)  # the dataset itself, already unpacked
            elif not spec.files:
                extract_archive(source, staging, max_bytes)
            else:
                for remote in spec.files:
                    local = None
                    if source is not None:
                        local = source / remote.filename if source.is_dir() else source
                        if len(spec.files) > 1 and source.is_file():
                            raise ImgclfError(
                                f"{name} has {len(spec.files)} archives: give source= a folder holding them."
                            )
                    path, digest = _fetch_verified(remote, home, local, progress)
                    if digest is not None:
                        pins.append((remote, digest, path if local is None else None))
                    target = staging / remote.into
                    target.mkdir(parents=True, exist_ok=True)
                    extract_archive(path, target, max_bytes)
            check_unpacked(staging, spec)
    except BaseException:
        for _, _, cached in pins:  # an untrusted download that did not unpack: not kept for next time
            if cached is not None:
                Path(cached).unlink(missing_ok=True)
        raise
    for remote, digest, _ in pins:
        pin_checksum(remote, home, digest)
    return final


def check_unpacked(folder: Path, spec: DatasetSpec) -> None:
    """A dataset folder must hold what its layout needs: image files, or a CSV for the ``csv`` layout.

    Raises:
        ImgclfError: nothing usable was unpacked (an empty or wrong archive); the dataset is not marked complete.
    """
    from imgclf.data.files import list_images

    found = any(folder.rglob("*.csv")) if spec.layout == "csv" else bool(list_images(folder))
    if not found:
        what = "CSV file" if spec.layout == "csv" else "image file"
        raise ImgclfError(f"dataset {spec.name!r} unpacked to no {what}: the archive is empty or not this dataset.")


def resolve(name_or_path: str | os.PathLike, data_home: str | os.PathLike | None = None) -> Path | str:
    """A dataset folder from a path, or from a registry name (downloading it if needed); a URL of packed data
    (``gs://…``, read through ``tf.io.gfile``) is returned as it is, a string.

    An existing path wins over a name.

    Raises:
        ImgclfError: neither an existing path nor a known name, or the download fails.
    """
    if is_url(name_or_path) and is_packed(name_or_path):
        return str(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    registry = load_registry()
    if str(name_or_path) in registry:
        return download(str(name_or_path), data_home, registry=registry)
    raise ImgclfError(
        f"DATA folder does not exist and is not a named dataset ({', '.join(sorted(registry))}). "
        f"Received: {str(name_or_path)!r}"
    )
