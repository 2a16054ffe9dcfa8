"""Where imgclf keeps datasets and weights it makes or downloads."""

from __future__ import annotations

import os
from pathlib import Path


def imgclf_home() -> Path:
    """The cache folder: ``$IMGCLF_HOME`` if set, else ``$XDG_CACHE_HOME/imgclf``, else ``~/.cache/imgclf``."""
    if os.environ.get("IMGCLF_HOME"):
        return Path(os.environ["IMGCLF_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imgclf"
