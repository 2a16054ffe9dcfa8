"""The journal of the files imgclf moves inside a data folder: a JSON list of records kept beside them —
``DATA/.relabel/manifest.json`` (relabel's batches: :mod:`imgclf.curation.relabel`) and
``DATA/.quarantine/manifest.json`` (what doctor and the studio set aside: :mod:`imgclf.data.quarantine`). One
reader and writer for both: a record is written before (relabel) or right after (quarantine) its file moves, so a
crash never loses track of a file, and what is read back is untrusted input (a downloaded dataset can carry a
journal): its shape is checked whole, and a journal of the wrong shape stops the command before anything moves.
Callers hold DATA's lock (:func:`imgclf.data.moves.locked`) around a read and the writes that follow it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from imgclf._io import read_json, write_json
from imgclf.errors import ImgclfError


class Journal:
    """The journal at ``path``, named ``what`` in errors (``"relabel manifest"``), whose records must each pass
    ``valid`` (described by ``expected``, e.g. ``"a list of batches, each with its moves: from, to, sha256"``)."""

    def __init__(self, path: str | os.PathLike, what: str, valid: Callable[[object], bool], expected: str):
        self.path, self.what, self.valid, self.expected = Path(path), what, valid, expected

    def read(self) -> list:
        """Every record, oldest first; ``[]`` when there is no journal yet.

        Raises:
            ImgclfError: it cannot be read, is not JSON, is not a list, or a record does not pass ``valid`` —
                naming the file and what was expected; nothing has moved then.
        """
        if not self.path.is_file():
            return []
        try:
            records = read_json(self.path)
            if not isinstance(records, list) or not all(self.valid(r) for r in records):
                raise ValueError(f"expected {self.expected}")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ImgclfError(f"{self.what} {str(self.path)!r} is unreadable ({exc}); nothing was moved.") from None
        return records

    def write(self, records: list) -> None:
        """Replace the journal by ``records`` (written whole, atomically: a reader sees the old list or the new).

        Raises:
            OSError: the folder cannot be made or written (a read-only data folder, a full disk).
        """
        self.path.parent.mkdir(exist_ok=True)
        write_json(self.path, records)
