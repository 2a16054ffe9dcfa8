"""Run folders: where ``imgclf train`` writes a model and everything about how it was made.

A run folder (``runs/<name>/``) holds ``model.keras``, ``classes.json``, ``config.yaml``,
``history.csv``, ``plots/accuracy.png``, ``plots/loss.png`` and ``summary.txt``; ``evaluate``
adds ``metrics.json``. A saved :class:`~imgclf.ImageClassifier` is the first three files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from imgclf.errors import ImgclfError

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.txt"
METRICS_FILE = "metrics.json"
SKIPPED_FILE = "skipped.json"
PLOTS_DIR = "plots"
#: Files whose presence makes a folder a saved model.
REQUIRED_FILES = (MODEL_FILE, CLASSES_FILE, CONFIG_FILE)


def new_run_dir(
    runs_dir: str | Path = "runs", name: str | None = None, overwrite: bool = False, prefix: str = "run"
) -> Path:
    """Create and return ``runs_dir/name`` (default name ``<prefix>-YYYYmmdd-HHMMSS``).

    Raises:
        ImgclfError: the name is not a plain folder name, or the folder exists and is not empty
            (unless ``overwrite``, which empties it first).
    """
    if name is None:
        name = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
        base, i = name, 2
        while (Path(runs_dir) / name).exists():
            name, i = f"{base}-{i}", i + 1
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ImgclfError(f"run name must be a plain folder name. Received: {name!r}")
    path = Path(runs_dir) / name
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ImgclfError(
                f"run folder {str(path)!r} already exists and is not empty; choose another --name or pass --overwrite."
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_run_dir(path: str | Path) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if it is a run folder (or saved model).

    Raises:
        ImgclfError: the path does not exist, or lacks one of :data:`REQUIRED_FILES`.
    """
    run = Path(path).expanduser()
    if not run.is_dir():
        raise ImgclfError(
            f"RUN must be an imgclf run folder (e.g. runs/<name>). Received: {str(path)!r} (not a folder)"
        )
    missing = [f for f in REQUIRED_FILES if not (run / f).is_file()]
    if missing:
        raise ImgclfError(
            f"RUN must be an imgclf run folder with {', '.join(REQUIRED_FILES)}. "
            f"Received: {str(path)!r} (missing {', '.join(missing)})"
        )
    return run


#: Keys of a run's ``config.yaml`` that describe the run rather than set it up.
RUN_RECORD_KEYS = ("imgclf_version", "class_mode_resolved", "precision_resolved", "data", "versions")


def read_train_config(path: str | Path, allowed: list[str] | tuple[str, ...]) -> tuple[dict, str | None]:
    """Read training settings from a YAML file (a run's ``config.yaml`` works too).

    Args:
        path: YAML file holding a mapping of settings, e.g. ``{model: chollet, epochs: 30,
            augment: course}``.
        allowed: the setting names accepted (``ImageClassifier.get_params()`` keys).

    Returns:
        ``(settings, data_path)``: the settings found, and ``data.path`` (or ``data`` when it is a
        string) if the file names the dataset, else ``None``.

    Raises:
        ImgclfError: the file is missing, is not YAML, is not a mapping, or has an unknown key.
    """
    import yaml

    from imgclf._io import read_yaml

    try:
        raw = read_yaml(path)
    except OSError as exc:
        raise ImgclfError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ImgclfError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ImgclfError(f"config file {str(path)!r} must hold a mapping of settings. Received: {type(raw).__name__}")
    data = raw.get("data")
    data_path = data.get("path") if isinstance(data, dict) else data
    settings = {k: v for k, v in raw.items() if k not in RUN_RECORD_KEYS}
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ImgclfError(f"unknown setting {unknown[0]!r} in {str(path)!r}; expected one of {sorted(allowed)}.")
    return settings, data_path
