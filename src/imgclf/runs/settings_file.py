"""A file of training settings (``imgclf train DATA --config FILE``): a YAML mapping of settings, a run's
``config.yaml`` included (its record keys are left out)."""

from __future__ import annotations

from pathlib import Path

from imgclf.errors import ImgclfError
from imgclf.runs.record import RUN_RECORD_KEYS, read_yaml_mapping


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
    try:
        raw = read_yaml_mapping(Path(path), "a config file: a YAML mapping of settings")
    except OSError as exc:
        raise ImgclfError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    data = raw.get("data")
    data_path = data.get("path") if isinstance(data, dict) else data
    settings = {k: v for k, v in raw.items() if k not in RUN_RECORD_KEYS}
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ImgclfError(f"unknown setting {unknown[0]!r} in {str(path)!r}; expected one of {sorted(allowed)}.")
    return settings, data_path
