"""Run folders: where ``imgclf train`` writes a model and everything about how it was made.

A run folder (``runs/<name>/``) holds ``model.keras``, ``classes.json``, ``config.yaml``,
``history.csv``, ``plots/accuracy.png``, ``plots/loss.png`` and ``summary.txt``; ``evaluate``
adds ``metrics.json``. A saved :class:`~imgclf.ImageClassifier` is the first three files.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

from imgclf import _io
from imgclf.data.images import DEFAULT_INTERPOLATION, ImageSpec
from imgclf.data.storage import is_url, sha256_of
from imgclf.errors import ImgclfError

MODEL_FILE = "model.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.txt"
METRICS_FILE = "metrics.json"
SKIPPED_FILE = "skipped.json"
SPLIT_FILE = "split.csv"  # every image trained on and its split (runs/split_file.py)
PROBLEMS_FILE = "data_problems.csv"  # a label table's rows and files left out
#: Temperature and calibration figures, and the out-of-distribution detector (:mod:`imgclf.unknown.calibrate`).
CALIBRATION_FILE = "calibration.json"
OOD_FILE = "ood.npz"
#: The checkpoint of the best monitored epoch so far.
BEST_FILE = "best.keras"
#: The checkpoint ``--resume`` continues from (model, optimizer and step count).
LAST_FILE = "last.keras"
#: Progress of training: epochs asked for and completed, status, best monitored value (:mod:`imgclf.training.control`).
STATE_FILE = "state.json"
PLOTS_DIR = "plots"
#: ``suspects --run``'s judgement; training images kept for ``--from``; what an update cost; predict's TFLite copy.
SUSPECTS_DIR, SUSPECTS_JSON, SUSPECTS_PNG, REHEARSAL_DIR, UPDATE_FILE, FAST_DIR = (
    "suspects", "suspects.json", "suspects.png", "rehearsal", "update.json", "fast")  # fmt: skip
#: The values of ``state.json``'s ``status`` (:class:`imgclf.training.control.RunCheckpoint`).
STATUSES = ("running", "interrupted", "finished", "stopped")
#: Files whose presence makes a folder a saved model.
REQUIRED_FILES = (MODEL_FILE, CLASSES_FILE, CONFIG_FILE)


def read_state(run: str | Path) -> dict | None:
    """A run's ``state.json``, or ``None`` when it has none.

    Raises:
        ImgclfError: the file is not JSON text (named).
    """
    path = Path(run) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return _io.read_json(path)
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ImgclfError(f"cannot read {str(path)!r}: {str(exc)[:200]}") from None


def history_until(run: str | Path | None, done: int) -> list[dict]:
    """The rows of a run's ``history.csv`` for epochs 1 to ``done`` (a resumed run goes on from them); rows that
    only count the epochs (``{"epoch": k}``) when there is no folder or no file (a worker other than the chief).

    Raises:
        ImgclfError: the file is garbled or lacks a row for one of those epochs (it is named).
    """
    path = Path(run) / HISTORY_FILE if run is not None else None
    if path is None or not path.is_file():
        return [{"epoch": epoch + 1} for epoch in range(done)]
    from imgclf.runs.history import read_history_csv

    rows = [r for r in read_history_csv(path) if r["epoch"] <= done]
    if [r["epoch"] for r in rows] != list(range(1, done + 1)):
        raise ImgclfError(
            f"{str(path)!r} does not hold one row for each of the {done} epochs state.json says are done "
            f"(epochs found: {[r['epoch'] for r in rows][:20]}); it was changed outside imgclf, so the run cannot "
            "be continued as it was. Start a new run."
        )
    return rows


def check_state(state, path: str | Path) -> dict:
    """``state`` (a run's ``state.json``) when its values are what training writes: a mapping with ``epochs`` and
    ``epochs_completed`` ints, ``0 <= epochs_completed <= epochs``, and a known ``status``.

    Raises:
        ImgclfError: anything else (a file changed by hand or by another program), naming the file and the value.
    """

    def whole(key):
        value = state.get(key) if isinstance(state, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    epochs, done = whole("epochs"), whole("epochs_completed")
    status = state.get("status") if isinstance(state, dict) else None
    if epochs is None or done is None or done > epochs or status not in STATUSES:
        shown = repr(state)[:200]
        raise ImgclfError(
            f"{str(path)!r} is not a state imgclf writes (epochs and epochs_completed ints with epochs_completed <= "
            f"epochs, status one of {list(STATUSES)}). Received: {shown}"
        )
    return state


def resumable(run_dir: str | Path) -> tuple[Path, dict, RunConfig, str]:
    """``(run, state, record, data)`` of a run that ``--resume`` can continue (``data``: its dataset's path).

    Raises:
        ImgclfError: not a run folder that has finished at least one epoch, one that has already finished, or one
            whose dataset is gone.
    """
    run = Path(run_dir)
    state = read_state(run)
    if state is None or not (run / LAST_FILE).is_file() or not (run / CONFIG_FILE).is_file():
        raise ImgclfError(
            "RUN must be a run folder that has finished at least one epoch (state.json, last.keras). "
            f"Received: {str(run_dir)!r}"
        )
    check_state(state, run / STATE_FILE)
    if state.get("status") in ("finished", "stopped"):
        raise ImgclfError(f"run {str(run_dir)!r} has already {state['status']}: nothing to resume.")
    record = RunConfig.read(run)
    data = (record.data or {}).get("path")
    if not data or not Path(data).exists():
        raise ImgclfError(f"the dataset of run {str(run_dir)!r} is gone. Received: {data!r}")
    table = (record.data or {}).get("table") or {}
    if isinstance(table, dict) and isinstance(table.get("sha256"), str) and Path(data).is_file():
        if sha256_of(data) != table["sha256"]:  # other rows, other labels: not the run that was stopped
            raise ImgclfError(f"the label table {data!r} changed since run {str(run_dir)!r} started (its SHA-256 "
                              "differs): --resume continues on the same data; start a new run, or --from this one.")
    return run, state, record, data


def unfinished_state(run: str | Path | None) -> dict | None:
    """The ``state.json`` of a run that stopped before its end (killed, interrupted) and can be continued from
    its ``last.keras``; ``None`` when ``run`` holds no such run."""
    state = read_state(run) if run is not None else None
    if not state or state.get("status") not in ("running", "interrupted") or not (Path(run) / LAST_FILE).is_file():
        return None
    return state


def load_model_file(path: str | Path, input_shape: tuple | None = None, outputs: int | None = None):
    """Load a ``.keras`` file with Keras' ``safe_mode`` on (no Python code from the file is ever run).

    Args:
        input_shape: when given, ``(height, width, channels)`` the model must take (a checkpoint of this run).
        outputs: when given, the number of output units it must have.

    Raises:
        ImgclfError: the file is missing or unreadable, is not a Keras model, holds code (a ``Lambda`` layer) that
            ``safe_mode`` refuses, or takes or returns another shape than asked; the message names the file.
    """
    import keras

    try:
        with open(path, "rb"):  # an unreadable file is named as such (Keras says "File not found")
            pass
    except OSError as exc:
        raise ImgclfError(f"cannot load the model {str(path)!r}: {exc.strerror or exc}") from None
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # a damaged archive raises whatever its first broken part raises
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ImgclfError(f"cannot load the model {str(path)!r}: {first}") from None
    if not isinstance(model, keras.Model):
        raise ImgclfError(f"cannot load the model {str(path)!r}: it holds a {type(model).__name__}, not a model.")
    got_in, got_out = tuple(model.inputs[0].shape[1:]), model.outputs[0].shape[-1]
    if (input_shape is not None and got_in != tuple(input_shape)) or (outputs is not None and got_out != outputs):
        raise ImgclfError(
            f"the model {str(path)!r} takes {got_in} and returns {got_out} values; this run needs "
            f"{tuple(input_shape) if input_shape else got_in} and {outputs if outputs is not None else got_out}. "
            "It is not this run's checkpoint."
        )
    return model


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


def read_run(path: str | Path) -> tuple[Path, RunConfig]:
    """``(folder, record)`` of a run folder (or saved classifier). Raises ImgclfError: not a run folder, or its
    record unreadable (the message names the folder)."""
    folder = check_run_dir(path)
    try:
        return folder, RunConfig.read(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImgclfError(f"cannot read the run record in {str(path)!r}: {exc}") from None


#: Keys of a run's ``config.yaml`` that describe the run rather than set it up.
RUN_RECORD_KEYS = ("imgclf_version", "from", "resolved", "data", "versions")


def _plain(value):
    """YAML-safe copies of settings: tuples become lists, mappings and lists are copied."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def read_yaml_mapping(path: Path, what: str, empty_ok: bool = False) -> dict:
    """The mapping the YAML file ``path`` holds (``what`` says what it is, in errors); an empty file is ``{}`` with
    ``empty_ok``.

    Raises:
        OSError: it cannot be read.
        ImgclfError: it is not UTF-8 text, not valid YAML (or a tag that builds Python objects, an alias bomb), or
            holds something other than a mapping.
    """
    import yaml

    try:
        raw = _io.read_yaml(path)
    except UnicodeDecodeError:
        raise ImgclfError(f"{str(path)!r} is not UTF-8 text ({what}).") from None
    except yaml.YAMLError as exc:
        raise ImgclfError(f"{str(path)!r} is not valid YAML: {str(exc)[:300]}") from None
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise ImgclfError(f"{str(path)!r} must hold a mapping ({what}). Received: {type(raw).__name__}")
    return raw


@dataclass
class RunConfig:
    """A run's record, written to ``config.yaml`` + ``classes.json`` and read back to replay the run.

    Attributes:
        settings: every setting as given (:mod:`imgclf.settings` names) — data settings included
            (``validation_split``, ``label_pattern``, ``label_column``), so the same data is found again.
        classes: class names, output order (``classes.json``).
        resolved: what the settings resolved to: ``model`` (or ``backbone``), ``target_size``, ``color_mode``,
            ``class_mode``, ``precision`` (training), ``epochs``.
        data: where the data came from: ``path``, ``layout``, ``validation_split_used``, image counts;
            ``None`` when the data was given in memory.
        versions: library versions; ``imgclf_version`` the version that wrote it.
        parent: the run this one started from (``imgclf train --from RUN``; ``from:`` in config.yaml), or ``None``.
    """

    settings: dict
    classes: list[str]
    resolved: dict = field(default_factory=dict)
    data: dict | None = None
    versions: dict = field(default_factory=dict)
    imgclf_version: str = ""
    parent: str | None = None

    @classmethod
    def of(cls, settings: dict, classes, resolved, class_mode: str, dataset, version: str) -> RunConfig:
        """The record of an estimator's run: its ``settings`` (``get_params()``), ``classes``, the
        :class:`~imgclf.settings.resolved.Resolved` settings (recorded as they are: ``Resolved.to_record``), the
        ``dataset`` (or ``None``) and imgclf's ``version``."""
        resolved_record = resolved.to_record(class_mode)
        settings = dict(settings)
        if settings.get("augment") is not None and not isinstance(settings["augment"], (str, dict)):
            settings["augment"] = resolved.augment.to_dict()  # an Augmentation object: recorded as its settings
        data = data_record(dataset) if dataset is not None else None
        return cls(settings, [str(c) for c in classes], resolved_record, data, library_versions(), version)

    def write(self, folder: str | Path) -> None:
        """Write ``config.yaml`` and ``classes.json`` into ``folder`` (atomically, creating it)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _io.write_json(folder / CLASSES_FILE, list(self.classes))
        record = {"imgclf_version": self.imgclf_version, **({"from": self.parent} if self.parent else {}),
                  **_plain(self.settings), "resolved": _plain(self.resolved)}  # fmt: skip
        if self.data is not None:
            record["data"] = _plain(self.data)
        record["versions"] = dict(self.versions)
        _io.write_yaml(folder / CONFIG_FILE, record)

    def changes_from(self, other: RunConfig) -> list[str]:
        """Names of the settings (and ``classes``) that differ between this record and ``other``."""
        mine, theirs = _plain(self.settings), _plain(other.settings)
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        return changed + (["classes"] if list(self.classes) != list(other.classes) else [])

    @property
    def image(self) -> ImageSpec:
        """How the run read its images: what the settings resolved to; for runs from before the resize filter
        depended on the model, the ``interpolation`` setting, else the default filter.

        Raises:
            ImgclfError: a recorded size, colour mode or filter that is not valid.
        """
        resolved = self.resolved
        interpolation = resolved.get("interpolation") or self.settings.get("interpolation") or DEFAULT_INTERPOLATION
        return ImageSpec(tuple(resolved["target_size"]), resolved["color_mode"], interpolation)

    def known_settings(self, names) -> dict:
        """The recorded settings whose names are in ``names``, as constructor arguments (``target_size`` a
        tuple again)."""
        out = {k: v for k, v in self.settings.items() if k in set(names)}
        if out.get("target_size") is not None:
            out["target_size"] = tuple(out["target_size"])
        return out

    def load_dataset(self):
        """The run's dataset found again with its recorded data settings (path, validation split, seed, label
        pattern and column), or ``None`` when the data was given in memory or is gone.

        Raises:
            ImgclfError: the folder is there but unusable.
        """
        from imgclf.data.folders import load_folder
        from imgclf.data.tables import TableColumns

        recorded = (self.data or {}).get("path")
        if not recorded or not Path(recorded).exists():
            return None
        s = self.settings
        table = TableColumns(**{k: s.get(k) if isinstance(s.get(k), str) else None
                                for k in TableColumns.__dataclass_fields__})  # fmt: skip
        return load_folder(recorded, s.get("validation_split"), s.get("seed", 0), s.get("label_pattern"),
                           s.get("label_column") or "label", table,
                           s.get("group_by") if isinstance(s.get("group_by"), str) else None)  # fmt: skip

    @classmethod
    def read(cls, folder: str | Path) -> RunConfig:
        """Read a run's ``config.yaml`` and ``classes.json``.

        Raises:
            OSError, ValueError: a file is missing or unreadable.
            ImgclfError: ``config.yaml`` is not UTF-8 YAML (a binary file, a tag that builds Python objects, an
                alias bomb).
        """
        folder = Path(folder)
        raw = read_yaml_mapping(folder / CONFIG_FILE, "a run's YAML record", empty_ok=True)
        settings = {k: v for k, v in raw.items() if k not in RUN_RECORD_KEYS}
        return cls(
            settings, list(_io.read_json(folder / CLASSES_FILE)), raw.get("resolved") or {}, raw.get("data"),
            raw.get("versions") or {}, raw.get("imgclf_version", ""), raw.get("from"),
        )  # fmt: skip


def data_record(dataset) -> dict | None:
    """Where a :class:`~imgclf.data.folders.Dataset` came from, for ``config.yaml``'s ``data``: ``path``,
    ``layout``, ``validation_split_used``, image counts. ``None`` for image paths given in memory."""
    if dataset.layout == "files":
        return None
    return {
        "path": str(dataset.root) if is_url(dataset.root) else str(Path(dataset.root).resolve()),
        "layout": dataset.layout,
        "validation_split_used": dataset.validation_split,
        "train_images": len(dataset.train),
        "validation_images": len(dataset.validation) if dataset.validation is not None else 0,
        "train_counts": dict(zip(dataset.class_names, dataset.train.counts(dataset.num_classes))),
        **({"table": dataset.source.to_record()} if getattr(dataset, "source", None) is not None else {}),
    }


def library_versions() -> dict:
    """Versions of Python, Keras, TensorFlow and NumPy, for the run record."""
    import keras
    import numpy as np
    import tensorflow as tf

    return {"python": platform.python_version(), "keras": keras.__version__, "tensorflow": tf.__version__,
            "numpy": np.__version__}  # fmt: skip
