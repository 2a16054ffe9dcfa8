"""A record of image files that could not be read, shared by the pipeline's parallel decoders.

Training, evaluation and prediction never stop on a bad file: the decoder records the file and why,
and the file is left out (training, evaluation) or given no prediction (prediction).
"""

from __future__ import annotations

import threading


class SkippedFiles:
    """Thread-safe ``{path: reason}`` of files left out, in the order they were found."""

    def __init__(self):
        self._lock = threading.Lock()
        self._reasons: dict[str, str] = {}

    def add(self, path: str, error: BaseException) -> None:
        """Record that ``path`` failed to decode with ``error`` (kept once per path)."""
        reason = f"{type(error).__name__}: {error}".strip()
        with self._lock:
            self._reasons.setdefault(path, reason[:300])

    def __len__(self) -> int:
        with self._lock:
            return len(self._reasons)

    def __contains__(self, path) -> bool:
        with self._lock:
            return path in self._reasons

    def items(self) -> list[tuple[str, str]]:
        """``(path, reason)`` pairs in the order they were found."""
        with self._lock:
            return list(self._reasons.items())

    def to_list(self) -> list[dict]:
        """JSON-ready ``[{"path": ..., "reason": ...}, ...]``."""
        return [{"path": p, "reason": r} for p, r in self.items()]
