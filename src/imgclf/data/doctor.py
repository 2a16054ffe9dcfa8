"""``imgclf doctor``: check every file of a dataset, report what is wrong, quarantine what is unusable.

Each file is sniffed by content (Pillow), not by extension, and fully decoded (JPEGs at a reduced DCT
scale, which still reads every byte, so truncation is caught). Exact duplicates are found by SHA-256 of the
bytes, near duplicates by perceptual hash (``imagehash.phash``, Hamming distance <= :data:`NEAR_DISTANCE`),
and leakage is the same or nearly the same image in training and in validation/test.

``--fix`` moves unusable files into ``DATA/.quarantine/`` (relative paths kept) and records each move in
``DATA/.quarantine/manifest.json``; ``--restore`` moves them back. Nothing is ever deleted.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
import warnings
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.data.doctor_sources import GROUP_LEAK, group_leaks, table_files
from imgclf.data.files import EXTENSIONS_BY_FORMAT, needs_heif
from imgclf.data.folders import EVAL_NAMES, TRAIN_NAMES, VALIDATION_NAMES, check_dir
from imgclf.data.quality import QUALITY_PROBLEMS, quality_problems, statistics
from imgclf.data.quarantine import MANIFEST, QUARANTINE_DIR, Restored, quarantine, restore  # noqa: F401 (doctor --fix)
from imgclf.data.tables import TableColumns, is_table

#: Formats imgclf reads (Pillow format names).
SUPPORTED_FORMATS = set(EXTENSIONS_BY_FORMAT)
#: Sides below this many pixels are reported as tiny.
TINY = 32
#: Perceptual-hash Hamming distance at or below which two images are near duplicates (of 64 bits).
NEAR_DISTANCE = 4

#: Every problem doctor names: code → (unusable?, explanation).
PROBLEMS = {
    "zero_length": (True, "empty file (0 bytes)"),
    "not_image": (True, "not an image (content is not a format Pillow knows, e.g. HTML saved as .jpg)"),
    "corrupt": (True, "fails to decode (corrupt or truncated)"),
    "unsupported_format": (True, "an image, but in a format imgclf does not read"),
    "oversized": (True, "beyond Pillow's decompression-bomb limit"),
    "unreadable": (True, "cannot be opened (permissions or an I/O error)"),
    "broken_link": (True, "a link to nothing (dangling symlink)"),
    "not_regular_file": (True, "not a regular file (FIFO, device or socket): never read"),
    "link_loop": (False, "a linked folder leading back to itself or a folder above it: not followed"),
    "link_duplicate": (False, "a linked folder whose images are already in DATA: not followed (no double counting)"),
    "link_outside": (False, "a linked folder outside DATA: not followed, its images are not used"),
    "extension_mismatch": (False, "content format differs from the file extension"),
    "multi_frame": (False, "animated or multi-frame: only the first frame is used"),
    "cmyk": (False, "CMYK colour: converted to RGB"),
    "transparency": (False, "has transparency: composited on white"),
    "palette": (False, "palette image: converted"),
    "16bit": (False, "16-bit samples: scaled to 8 bits"),
    "grayscale": (False, "grayscale image in an RGB dataset: replicated to 3 channels"),
    "exif_rotated": (False, "EXIF orientation: rotated upright when read"),
    "tiny": (False, f"smaller than {TINY} px on a side"),
    "duplicate": (False, "exact copy of another file in the same split"),
    "near_duplicate": (False, "nearly the same picture as another file in the same split"),
    "label_conflict": (False, "the same picture appears under two classes"),
    "leak": (False, "the same or nearly the same picture is in training and in validation/test"),
    "group_leak": (False, GROUP_LEAK),
    **{code: (False, text) for code, text in QUALITY_PROBLEMS.items()},
}


#: Problems of a linked folder (reported, never walked).
LINK_PROBLEMS = {"link_loop", "link_duplicate", "link_outside"}


@dataclass
class FileCheck:
    """What doctor found about one file.

    Attributes:
        path: the file, relative to the dataset root (POSIX separators).
        split: ``train``, ``validation``, ``test`` or ``""`` (single layout).
        label: the class folder name.
        bytes: file size in bytes.
        format, mode: Pillow's format and mode (``""`` when not an image).
        width, height: size in pixels (0 when unknown).
        problems: problem codes (see :data:`PROBLEMS`).
        detail: error message of a failed decode.
        sha256: content hash; phash: perceptual hash as hex (``""`` when not decodable).
        quality: the measured statistics of :func:`imgclf.data.quality.statistics` (full checks only).
        duplicate_of: for a ``duplicate``, the first file of the same split with the same bytes (``""`` otherwise).
    """

    path: str
    split: str
    label: str
    bytes: int = 0
    format: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    problems: list[str] = field(default_factory=list)
    detail: str = ""
    sha256: str = ""
    phash: str = ""
    quality: dict = field(default_factory=dict)
    duplicate_of: str = ""

    @property
    def unusable(self) -> bool:
        return any(PROBLEMS[p][0] for p in self.problems)


#: Leading bytes of the formats imgclf reads (their specifications' signatures).
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _files(root: Path) -> tuple[list[tuple[str, str, Path]], list[tuple[str, str, Path, str]]]:
    """``(split, label, path)`` of every non-hidden entry below class folders that is not a folder, whatever its
    extension; and ``(split, label, path, problem)`` of every linked folder there, which is never walked
    (``link_loop``, ``link_duplicate`` or ``link_outside``, as :func:`imgclf.data.files.list_images` skips them)."""
    split_dirs = {d.name.lower(): d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")}
    named = [n for n in (*TRAIN_NAMES, *VALIDATION_NAMES) if n in split_dirs]
    tops = [(split_dirs[n].name, split_dirs[n]) for n in named] if named else [("", root)]
    real_root = os.path.realpath(root)
    found, links = [], []
    for split, top in tops:
        for class_dir in sorted(d for d in top.iterdir() if d.is_dir() and not d.name.startswith(".")):
            for dirpath, dirnames, filenames in os.walk(class_dir):  # linked folders are listed, not walked
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for d in [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                    real, here = os.path.realpath(os.path.join(dirpath, d)), os.path.realpath(dirpath)
                    if here == real or here.startswith(real + os.sep):
                        problem = "link_loop"
                    elif real == real_root or real.startswith(real_root + os.sep):
                        problem = "link_duplicate"
                    else:
                        problem = "link_outside"
                    links.append((split, class_dir.name, Path(dirpath) / d, problem))
                found += [
                    (split, class_dir.name, Path(dirpath) / f) for f in sorted(filenames) if not f.startswith(".")
                ]
    return found, links


def check_file(path: Path, root: Path, split: str, label: str, full: bool = True) -> FileCheck:
    """Check one file: sniff its format, decode it (fully unless ``full`` is false), hash it."""
    import imagehash

    rel = path.relative_to(root).as_posix()
    fc = FileCheck(rel, split, label)
    try:
        if path.is_symlink() and not path.exists():
            fc.problems.append("broken_link")
            return fc
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read below
            fc.problems.append("not_regular_file")
            return fc
        fc.bytes = info.st_size
        if fc.bytes == 0:
            fc.problems.append("zero_length")
            return fc
        data = path.read_bytes()
    except OSError as exc:
        fc.problems.append("unreadable")
        fc.detail = f"{type(exc).__name__}: {exc.strerror or exc}"
        return fc
    fc.sha256 = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            needs_heif(path)
            with Image.open(path) as im:
                fc.format, fc.mode, (fc.width, fc.height) = im.format or "", im.mode, im.size
                frames = getattr(im, "n_frames", 1)
                exif = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
                transparency = "transparency" in im.info
                if full:
                    if im.format == "JPEG":
                        im.draft("RGB" if im.mode != "CMYK" else None, (64, 64))
                    im.load()
                    fc.phash = str(imagehash.phash(im.convert("L")))
                    fc.quality = statistics(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        fc.problems.append("oversized")
        fc.detail = str(exc)
        return fc
    except Image.UnidentifiedImageError as exc:
        # An image signature that Pillow cannot parse is a damaged image; anything else is not an image.
        fc.problems.append("corrupt" if _looks_like_image(data) else "not_image")
        fc.detail = f"{type(exc).__name__}: {exc}"
        return fc
    except Exception as exc:  # noqa: BLE001  (truncated, corrupt: any decoder error)
        fc.problems.append("corrupt")
        fc.detail = f"{type(exc).__name__}: {exc}"
        return fc
    if fc.format not in SUPPORTED_FORMATS:
        fc.problems.append("unsupported_format")
    elif path.suffix.lower() not in EXTENSIONS_BY_FORMAT.get(fc.format, ()):
        fc.problems.append("extension_mismatch")
    if frames > 1 and fc.format != "MPO":
        fc.problems.append("multi_frame")
    if fc.mode == "CMYK":
        fc.problems.append("cmyk")
    if fc.mode in ("RGBA", "LA", "PA") or transparency:
        fc.problems.append("transparency")
    if fc.mode == "P":
        fc.problems.append("palette")
    if fc.mode.startswith("I;16") or fc.mode == "I":
        fc.problems.append("16bit")
    if exif in (2, 3, 4, 5, 6, 7, 8):
        fc.problems.append("exif_rotated")
    if min(fc.width, fc.height) < TINY:
        fc.problems.append("tiny")
    fc.problems += quality_problems(fc.quality) if fc.quality else []
    return fc


def _cross_checks(checks: list[FileCheck]) -> None:
    """Duplicates, near duplicates, label conflicts and leakage, added to the files' problems."""
    is_eval = {s: s.lower() in EVAL_NAMES for s in {c.split for c in checks}}
    by_hash = defaultdict(list)
    for c in checks:
        if c.sha256 and not c.unusable:
            by_hash[c.sha256].append(c)
    hashed = [(c, c.phash) for c in checks if c.phash and not c.unusable]

    def flag(c: FileCheck, code: str):
        if code not in c.problems:
            c.problems.append(code)

    for group in by_hash.values():
        for c in group[1:]:
            same_split = [o for o in group if o is not c and o.split == c.split]
            if same_split:
                flag(c, "duplicate")
                c.duplicate_of = same_split[0].path
        if len({c.label for c in group}) > 1:
            for c in group:
                flag(c, "label_conflict")
        if len({is_eval[c.split] for c in group}) > 1:
            for c in group:
                flag(c, "leak")
    # Near duplicates: pairwise Hamming distance of the 64-bit perceptual hashes, in blocks (NumPy popcount).
    if len(hashed) > 1:
        codes = np.array([int(c.phash, 16) for c, _ in hashed], dtype=np.uint64)
        items = [c for c, _ in hashed]
        for start in range(0, len(codes), 256):
            block = np.bitwise_count(codes[start : start + 256, None] ^ codes[None, :])
            for i, j in zip(*np.nonzero(block <= NEAR_DISTANCE)):
                a, b = items[start + i], items[j]
                if start + i >= j or a.sha256 == b.sha256:
                    continue
                if is_eval[a.split] != is_eval[b.split]:
                    flag(a, "leak")
                    flag(b, "leak")
                elif a.split == b.split:
                    flag(b, "near_duplicate")


def diagnose_folder(data: str | os.PathLike, full: bool = True, workers: int | None = None, progress=None,
                    table: TableColumns | None = None, group_by: str | None = None) -> dict:  # fmt: skip
    """Check every file of a dataset folder, or every picture a label table names.

    Args:
        data: ``DATA/<class>/...``, ``DATA/{train,validation,test}/<class>/...``, or a label table
            (:mod:`imgclf.data.tables`; its rows' problems are findings too).
        full: decode every image fully (default) rather than only reading headers.
        workers: checking threads (default one per CPU).
        progress: optional callable ``(done, total)`` called as files finish.
        table: how to read a label table (:class:`~imgclf.data.tables.TableColumns`).
        group_by: a regex giving each file's group from its name: a group in two splits is ``group_leak`` (a
            table's ``group_col`` does the same).

    Returns:
        ``{"root", "files": [FileCheck as dict], "counts": {split: {class: usable}}, "problems":
        {code: [paths]}, "unusable": [paths], "seconds", "files_per_second"}``.

    Raises:
        ImgclfError: ``data`` is not a readable folder, or a table :func:`~imgclf.data.tables.load_table` refuses.
    """
    groups, table_problems = None, {}
    if is_table(data):
        root, files, groups, table_problems = table_files(data, table)
        links = []
    else:
        root = check_dir(data)
        files, links = _files(root)
    start = time.perf_counter()
    checks: list[FileCheck] = []
    with ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
        futures = [pool.submit(check_file, path, root, split, label, full) for split, label, path in files]
        for i, fut in enumerate(futures, start=1):
            checks.append(fut.result())
            if progress is not None:
                progress(i, len(futures))
    _cross_checks(checks)
    leaking = set(group_leaks(checks, groups, group_by))
    for c in checks:
        if c.path in leaking:
            c.problems.append("group_leak")
    for split, label, path, problem in links:
        target = os.readlink(path)
        checks.append(
            FileCheck(path.relative_to(root).as_posix(), split, label, problems=[problem], detail=f"-> {target}")
        )
    rgb_set = Counter(c.mode for c in checks if c.mode).most_common(1)
    if rgb_set and rgb_set[0][0] in ("RGB", "CMYK", "YCbCr"):
        for c in checks:
            if c.mode in ("L", "1"):
                c.problems.append("grayscale")
    seconds = time.perf_counter() - start
    counts: dict[str, Counter] = defaultdict(Counter)
    problems: dict[str, list[str]] = defaultdict(list)
    for c in checks:
        if not c.unusable and not set(c.problems) & LINK_PROBLEMS:  # a linked folder is not an image
            counts[c.split or "all"][c.label] += 1
        for p in c.problems:
            problems[p].append(c.path)
    return {
        "root": str(root),
        "files": [asdict(c) for c in checks],
        "counts": {s: dict(sorted(v.items())) for s, v in counts.items()},
        "problems": {**{p: problems[p] for p in PROBLEMS if p in problems}, **table_problems},
        "unusable": [c.path for c in checks if c.unusable],
        "seconds": seconds,
        "files_per_second": len(checks) / seconds if seconds else 0.0,
    }
