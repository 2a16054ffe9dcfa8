"""The fast path inside every run: a TensorFlow-free copy of the final model, and the choice of engine.

After training, :func:`write_fast_copy` exports the calibrated model (with its penultimate-features output and
``ood.npz``, so "unknown" is scored as for the run) to float32 TFLite in ``RUN/fast/`` through
:func:`imgclf.deploy.export.export_run` (``quick``: straight from the traced graph, :mod:`imgclf.deploy.graph_tflite`,
~1 s instead of ~6 s), and checks it against Keras on up to :data:`PARITY_IMAGES` validation
images (``RUN/fast/export.json``). ``imgclf predict RUN``, ``evaluate RUN`` and ``serve RUN`` then run that copy in
the standalone ``ai-edge-litert`` interpreter without importing TensorFlow (a cold ``predict`` in well under a
second instead of ~6 s) — when the copy is there and its check passed; else Keras, and the command says why.

Why TFLite and not ONNX (measured on a SqueezeNet run, ``bench/README.md``): no extra converter (Keras'
``model.export(format="litert")`` needs only TensorFlow, ONNX needs ``tf2onnx``), a smaller file, and the
interpreter imports in less time than ``onnxruntime``; both agree with Keras to ~1e-6.

This module imports neither TensorFlow nor Keras (:func:`write_fast_copy` imports the exporter when called).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from imgclf import _io
from imgclf.errors import ImgclfError, check_one_of
from imgclf.runs import record as runfiles

#: Validation images the copy is checked on (a seeded random choice): enough to catch a conversion that changes
#: the arithmetic, few enough to add about a second to ``train``.
PARITY_IMAGES = 64
#: The largest probability difference a copy may show against Keras (float32 kernels differ by ~1e-6).
MAX_DIFFERENCE = 1e-4
#: ``--engine`` values: ``auto`` takes the fast copy when it passed its check, else Keras.
ENGINES = ("auto", "keras", "tflite", "onnx")
MODEL_NAME, RECORD_NAME = "model.tflite", "export.json"


def passed(record: dict | None) -> bool:
    """Whether a fast copy's ``export.json`` shows it agrees with Keras: every checked image gets the same class
    (and the same "unknown" answer) and no probability differs by more than :data:`MAX_DIFFERENCE`."""
    check = (record or {}).get("parity") or {}
    same = check.get("top1_agreement") == 1.0 and check.get("unknown_agreement", 1.0) == 1.0
    difference = check.get("max_probability_difference")
    return bool(same and difference is not None and difference <= MAX_DIFFERENCE and check.get("images"))


def fast_record(run: str | os.PathLike) -> dict | None:
    """The fast copy's ``export.json`` (its parity check), or ``None`` when the run has none or it is unreadable."""
    path = Path(run) / runfiles.FAST_DIR / RECORD_NAME
    try:
        record = _io.read_json(path) if path.is_file() else None
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def choose_engine(run: str | os.PathLike, engine: str = "auto") -> tuple[Path | None, str | None]:
    """``(model file, note)``: the TensorFlow-free model to run for the run folder ``run``, or ``None`` for Keras,
    and a line saying why Keras runs when the fast copy was not taken (``None`` when nothing needs saying).

    ``auto``: the fast copy when it exists, passed its check (:func:`passed`) and its runtime is installed;
    ``keras``: Keras; ``tflite``: the fast copy, checked or not; ``onnx``: the newest ``RUN/export/onnx*/model.onnx``.

    Raises:
        ImgclfError: an unknown engine, or a forced engine whose model or runtime is missing.
    """
    check_one_of("engine", engine, list(ENGINES))
    run = Path(run)
    if engine == "keras" or not (run / runfiles.CONFIG_FILE).is_file():  # not a run: Predictor.from_run says why
        return None, None
    if engine == "onnx":
        found = sorted((run / "export").glob("onnx*/model.onnx"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise ImgclfError(f"--engine onnx needs an ONNX export of the run: imgclf export {run} --format onnx")
        return found[-1], None
    runfiles.RunConfig.read(run)  # a damaged run says so, whichever engine would answer
    model, record = run / runfiles.FAST_DIR / MODEL_NAME, fast_record(run)
    has_runtime = importlib.util.find_spec("ai_edge_litert") is not None
    if engine == "tflite":
        if not model.is_file():
            raise ImgclfError(f"--engine tflite needs the run's fast copy ({model} is missing): trained before it "
                              f"existed? `imgclf export {run} --format tflite` makes one elsewhere.")  # fmt: skip
        return model, None
    if not model.is_file() or record is None:
        return None, None  # an older run: Keras, as it always was
    if not passed(record):
        return None, f"The run's TensorFlow-free copy {failed_check(record)}: predicting with Keras."
    if record.get("model_sha256") != _sha256(run / runfiles.MODEL_FILE):
        return None, (
            "The run's TensorFlow-free copy was made from another model.keras than the one there now: "
            "predicting with Keras."
        )
    changed = _changed_files(run / runfiles.FAST_DIR, record)
    if changed:
        return None, (f"The run's TensorFlow-free copy is not the one that was checked ({', '.join(changed)} "
                      "changed, damaged or unrecorded): predicting with Keras.")  # fmt: skip
    if not has_runtime:
        return None, "ai-edge-litert is not installed: predicting with Keras (pip install ai-edge-litert)."
    return model, None


def parity_line(record: dict) -> str:
    """One line on a fast copy's check: images, top-1 agreement, largest probability difference."""
    check = record.get("parity") or {}
    if not check.get("images"):
        return "not checked: no image of the run could be read"
    split = record.get("data_split", "validation")  # older records: the copy was checked on validation images
    which = f"{split} images" if split in ("training", "validation") else "images"
    line = (f"{check['images']} {which}, top-1 agreement {check['top1_agreement']:.3f}, largest "
            f"probability difference {check['max_probability_difference']:.1e}")  # fmt: skip
    if "unknown_agreement" in check:
        line += f", unknown agreement {check['unknown_agreement']:.3f}"
    return line


def failed_check(record: dict) -> str:
    """How a copy that did not pass (:func:`passed`) failed, for a message: never checked, or disagreeing."""
    checked = bool((record.get("parity") or {}).get("images"))
    return (
        f"{'disagrees with Keras on its check' if checked else 'was never checked against Keras'} "
        f"({parity_line(record)})"
    )


def write_fast_copy(run: str | os.PathLike, max_images: int = PARITY_IMAGES) -> dict:
    """Write ``RUN/fast/``: the run's final model as float32 TFLite with what scoring "unknown" needs, checked
    against Keras on up to ``max_images`` validation images; an older copy is replaced.

    Returns:
        The copy's ``export.json`` record (``bytes``, ``seconds``, ``parity``...); when the model cannot be converted
        or checked (a layer the converter lacks, ai-edge-litert missing), ``{"error": reason}`` and no copy: the
        run then predicts with Keras.

    Raises:
        ImgclfError: ``run`` is not a run folder.
    """
    from imgclf.deploy.export import export_run

    run = runfiles.check_run_dir(run)
    folder = run / runfiles.FAST_DIR
    if folder.exists():
        shutil.rmtree(folder)
    try:
        record = export_run(run, "tflite", out=folder, max_images=max_images, quick=True)
    except Exception as exc:  # a layer the converter lacks: the run stays whole, predicting with Keras
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    record["model_sha256"] = _sha256(run / runfiles.MODEL_FILE)  # the copy is of this model.keras, and no other
    record["files_sha256"] = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file()
                              and p.name != RECORD_NAME}  # and these are the files that were checked  # fmt: skip
    _io.write_json(folder / RECORD_NAME, record)
    return record


def _changed_files(folder: Path, record: dict) -> list[str]:
    """The copy's files whose SHA-256 differs from ``export.json``'s ``files_sha256`` (all of them when it has none:
    a copy is used only as it was checked)."""
    recorded = record.get("files_sha256")
    if not isinstance(recorded, dict) or MODEL_NAME not in recorded:
        return [MODEL_NAME]
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != RECORD_NAME}
    names = {n for n in recorded if isinstance(n, str) and n == Path(n).name and n not in ("", ".", "..")}
    odd = sorted(map(str, set(recorded) - names))  # a name that is not a file of the folder: never read
    return odd + sorted(name for name in present | names if _sha256(folder / name) != recorded.get(name))


def _sha256(path: Path) -> str | None:
    from imgclf.data.storage import sha256_of

    return sha256_of(path) if path.is_file() else None
