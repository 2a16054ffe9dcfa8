"""What ``imgclf suspects --out DIR`` writes: the suspects as JSON and a contact sheet to look at them.

``suspects.json`` is ``{"looked_at", "flagged", "judge", "suspects": [{path, split, label, suggested, confidence}]}``
(most likely wrong first); ``suspects.png`` shows the first ``top`` of them, each as a thumbnail captioned
``given -> suggested``, the out-of-fold confidence in the given label and the file's name. A run folder's
``suspects/`` (:data:`~imgclf.runs.record.SUSPECTS_DIR`) is shown in its report.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from imgclf._io import read_json, write_json
from imgclf.errors import ImgclfError
from imgclf.plotting import save_grid
from imgclf.runs.record import SUSPECTS_JSON, SUSPECTS_PNG

#: Side of a thumbnail in the contact sheet, in pixels (the picture is fitted inside, its aspect kept).
THUMBNAIL = 160
#: The most thumbnails a contact sheet holds (``--top 0`` lists every suspect but draws this many).
MAX_SHEET = 120


def thumbnail(path: str | os.PathLike, size: int = THUMBNAIL) -> np.ndarray:
    """uint8 ``(size, size, 3)``: the image fitted inside a square, aspect kept, padded grey (Pillow's
    ``ImageOps.pad``); a file that cannot be read gives a grey square."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced DCT scale
            picture = ImageOps.pad(ImageOps.exif_transpose(img).convert("RGB"), (size, size), color=(128, 128, 128))
    except (OSError, ValueError, Image.DecompressionBombError):
        return np.full((size, size, 3), 128, np.uint8)
    return np.asarray(picture, np.uint8)


def contact_sheet(suspects, path: str | os.PathLike, top: int = 30, title: str | None = None) -> Path | None:
    """Draw the first ``top`` :class:`~imgclf.curation.suspects.Suspect` s as a PNG grid (6 columns); ``None``
    when there are none."""
    shown = list(suspects)[:top]
    if not shown:
        return None
    captions = [f"{s.label} -> {s.suggested}\n{s.confidence:.3f}  {Path(s.path).name[:22]}" for s in shown]
    return save_grid(np.stack([thumbnail(s.path) for s in shown]), path, titles=captions, cols=min(6, len(shown)),
                     title=title)  # fmt: skip


def write_suspects(report, out_dir: str | os.PathLike, judge: str, top: int = 30) -> tuple[Path, Path | None]:
    """Write ``suspects.json`` (every flagged image) and ``suspects.png`` (the first ``top``) into ``out_dir``
    (created). ``judge`` says what judged (e.g. ``squeezenet1_1 features``). Returns both paths (the PNG ``None``
    when nothing was flagged)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {"looked_at": report.looked_at, "flagged": len(report.suspects), "judge": judge,
            "suspects": [asdict(s) for s in report.suspects]}  # fmt: skip
    json_path = out / SUSPECTS_JSON
    write_json(json_path, data)
    sheet = None
    if report.suspects:
        title = f"Suspected wrong labels: {min(top, len(report.suspects))} of {len(report.suspects)} flagged"
        sheet = contact_sheet(report.suspects, out / SUSPECTS_PNG, top, title)
    elif (out / SUSPECTS_PNG).is_file():
        (out / SUSPECTS_PNG).unlink()  # an old sheet would show suspects this judgement no longer flags
    return json_path, sheet


def _is_suspect(s, keys) -> bool:
    return (isinstance(s, dict) and keys <= s.keys()
            and all(isinstance(s[k], str) for k in ("path", "label", "suggested"))
            and isinstance(s["confidence"], (int, float)) and not isinstance(s["confidence"], bool))  # fmt: skip


def read_suspects(path: str | os.PathLike) -> list[dict]:
    """The suspects of a ``suspects.json`` (or of the folder holding one: ``--out DIR``, ``RUN/suspects``), most
    likely wrong first, as dicts with ``path``, ``split``, ``label``, ``suggested``, ``confidence``.

    Raises:
        ImgclfError: no such file, or not a suspects file.
    """
    file = Path(path) / SUSPECTS_JSON if Path(path).is_dir() else Path(path)
    keys = {"path", "label", "suggested", "confidence"}
    try:
        data = read_json(file)
        suspects = data["suspects"]
        if not isinstance(suspects, list) or not all(_is_suspect(s, keys) for s in suspects):
            raise ValueError("no list of suspects with path, label, suggested (text) and confidence (a number)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImgclfError(f"cannot read suspects from {str(path)!r} ({exc}): expected the suspects.json of "
                          "`imgclf suspects DATA --out DIR`.") from None  # fmt: skip
    return suspects
