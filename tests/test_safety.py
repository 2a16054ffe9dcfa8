"""Careless and hostile input, command by command: every failure a user can cause is one line ``Error: ...`` with
exit code 2 and no traceback, and leaves every input file byte-identical; real bugs exit 1 with a log; a full disk
puts the old run back; hypothesis fuzzes the options and config files of ``train``, ``predict`` and ``doctor``."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import cli_train, run_cli, write_class_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SQUEEZENET = Path(__file__).resolve().parents[2] / "shared" / "weights"


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every regular file under ``root`` (links not followed)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink():
                out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs a careless user points imgclf at: good data, a folder of unreadable files, HTML saved as .jpg, config
    files, a trained run, and a run whose model holds a Lambda layer."""
    root = tmp_path_factory.mktemp("safety")
    data = write_class_folder(root / "data", {"a": 10, "b": 10}, size=40)
    bad = write_class_folder(root / "bad", {"a": 3, "b": 3}, size=40)
    for p in bad.rglob("*.png"):
        p.write_bytes(b"<html>not a picture</html>")
    (root / "page.jpg").write_bytes(b"<!doctype html><html><body>hello</body></html>")
    configs = {
        "int_size.yaml": "target_size: 64\n",
        "list.yaml": "- epochs\n- 3\n",
        "broken.yaml": "epochs: [1, 2\n",
        "unknown.yaml": "epochz: 3\n",
        "python_tag.yaml": "epochs: !!python/object/apply:os.system ['echo owned']\n",
        "text_epochs.yaml": "epochs: ten\n",
        "nested.yaml": "augment: {rotation_range: {a: 1}}\n",
        "bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
        + "epochs: *i\n",  # 9**9 = 387 million values from a few hundred bytes
        "binary_tag.yaml": "epochs: !!binary aGVsbG8=\nmodel: !!binary aGVsbG8=\n",
        "set_tag.yaml": "augment: !!set {rotation_range: null}\ntarget_size: !!set {1: null, 2: null}\n",
        "time_tag.yaml": "epochs: 2001-12-14t21:59:43.10-05:00\nseed: 2002-12-14\n",
    }
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    for name, text in configs.items():
        (root / name).write_text(text)
    (root / "not_a_dir").write_text("a file where a folder should be")
    (root / "folder_list.jsonl").write_text(json.dumps({"path": str(data / "a" / "000.png"), "label": "b",
                                                        "folder": []}) + "\n")  # fmt: skip
    cli_train(data, "--target-size", 32, 32, "--epochs", 1, "--batch-size", 8, "--runs-dir", root / "runs",
              "--name", "r")  # fmt: skip
    import keras

    lam = root / "runs" / "lam"
    shutil.copytree(root / "runs" / "r", lam)
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Lambda(lambda x: x * 1.0),
                              keras.layers.Flatten(), keras.layers.Dense(1, activation="sigmoid")])  # fmt: skip
    model.save(lam / "model.keras")
    model.save(lam / "last.keras")
    state = (lam / "state.json").read_text().replace('"finished"', '"interrupted"')
    (lam / "state.json").write_text(state)
    tampered = {  # interrupted runs whose files were changed by hand: resume refuses, naming the file
        "history": ("history.csv", b"epoch,loss,accuracy\n1,abc,0.5\n"),
        "history-rows": ("history.csv", b"epoch,loss,accuracy\n"),
        "state-type": ("state.json", b'{"epochs": 1, "epochs_completed": "1", "status": "interrupted"}'),
        "state-binary": ("state.json", b"\x89PNG\r\n\x1a\n\x00\xff"),
        "state-list": ("state.json", b"[1, 2]"),
        "last-garbled": ("last.keras", b"PK\x03\x04 not really a zip"),
    }
    for name, (file, content) in tampered.items():
        shutil.copytree(root / "runs" / "r", root / "runs" / name)
        (root / "runs" / name / "state.json").write_text(state)
        (root / "runs" / name / file).write_bytes(content)
    for name, content in (("config-tag", b"seed: !!python/object/apply:os.system ['echo owned']\n"),
                          ("config-binary", bytes(range(256)))):  # fmt: skip
        shutil.copytree(root / "runs" / "r", root / "runs" / name)
        (root / "runs" / name / "state.json").write_text(state)
        (root / "runs" / name / "config.yaml").write_bytes(content)
    other = root / "runs" / "last-shape"  # a last.keras of another input shape
    shutil.copytree(root / "runs" / "r", other)
    (other / "state.json").write_text(state)
    keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(1, activation="sigmoid")]).save(other / "last.keras")  # fmt: skip
    return root


def bad_cases(root: Path) -> dict[str, tuple[list, str]]:
    """``{case: (arguments, a fragment of the one-line message)}``."""
    data, bad, run, lam, page = (
        root / "data",
        root / "bad",
        root / "runs" / "r",
        root / "runs" / "lam",
        root / "page.jpg",
    )
    out = root / "out"
    train = ["train", data, "--runs-dir", out, "--epochs", "1"]
    return {
        # train: data, settings, config files, places, resume
        "train-unreadable": (
            ["train", bad, "--runs-dir", out, "--epochs", "1", "--target-size", "32", "32"],
            "none of the 6 training images can be read",  # 3 a class: all kept for training
        ),
        "train-huge": ([*train, "--target-size", "4000", "4000"], "needs about"),
        "train-config-int-size": ([*train, "--config", root / "int_size.yaml"], "target_size must be two positive"),
        "train-config-list": ([*train, "--config", root / "list.yaml"], "must hold a mapping"),
        "train-config-broken": ([*train, "--config", root / "broken.yaml"], "is not valid YAML"),
        "train-config-unknown": ([*train, "--config", root / "unknown.yaml"], "unknown setting 'epochz'"),
        "train-config-python": ([*train, "--config", root / "python_tag.yaml"], "is not valid YAML"),
        "train-config-text": (["train", data, "--runs-dir", out, "--config", root / "text_epochs.yaml"], "epochs"),
        "train-config-nested": ([*train, "--config", root / "nested.yaml"], "rotation_range"),
        "train-config-bomb": ([*train, "--config", root / "bomb.yaml"], "expands to more than 100,000 values"),
        "train-config-binary": ([*train, "--config", root / "binary.yaml"], "is not UTF-8 text"),
        "train-config-binary-tag": ([*train, "--config", root / "binary_tag.yaml"], "Received: b'hello'"),
        "train-config-set-tag": ([*train, "--config", root / "set_tag.yaml"], "augment"),
        "train-config-time-tag": ([*train, "--config", root / "time_tag.yaml"], "Received: datetime"),
        "train-config-missing": ([*train, "--config", root / "nowhere.yaml"], "cannot read config file"),
        "train-runs-dir-file": (["train", data, "--runs-dir", root / "not_a_dir", "--epochs", "1"], "Not a directory"),
        "train-epochs": ([*train[:-2], "--epochs", "0"], "epochs"),
        "train-batch-text": ([*train, "--batch-size", "abc"], "Invalid value for '--batch-size'"),
        "train-weights-alone": ([*train, "--weights", page], "weights"),
        "train-name": ([*train, "--name", "../up"], "run name must be a plain folder name"),
        "train-bad-model": ([*train, "--model", "vgg99"], "model must be one of"),
        "train-resume-data": (["train", data, "--resume", run], "resume continues a run"),
        "train-resume-not-run": (["train", "--resume", data], "RUN must be a run folder"),
        "train-resume-lambda": (["train", "--resume", lam], "cannot load the model"),
        "train-resume-history": (["train", "--resume", root / "runs" / "history"], "history.csv' is garbled"),
        "train-resume-history-rows": (["train", "--resume", root / "runs" / "history-rows"], "one row for each"),
        "train-resume-state-type": (["train", "--resume", root / "runs" / "state-type"], "is not a state imgclf"),
        "train-resume-state-binary": (["train", "--resume", root / "runs" / "state-binary"], "state.json'"),
        "train-resume-state-list": (["train", "--resume", root / "runs" / "state-list"], "is not a state imgclf"),
        "train-resume-last-garbled": (["train", "--resume", root / "runs" / "last-garbled"], "cannot load the model"),
        "train-resume-config-tag": (["train", "--resume", root / "runs" / "config-tag"], "is not valid YAML"),
        "train-resume-config-binary": (["train", "--resume", root / "runs" / "config-binary"], "is not UTF-8"),
        "predict-config-tag": (["predict", root / "runs" / "config-tag", data / "a" / "000.png"], "not valid YAML"),
        "report-config-binary": (["report", root / "runs" / "config-binary"], "is not UTF-8"),
        "train-resume-last-shape": (["train", "--resume", root / "runs" / "last-shape"], "not this run's checkpoint"),
        # using a run
        "predict-missing": (["predict", run, root / "nowhere.jpg"], "does not exist"),
        "predict-crop": (["predict", run, data / "a" / "000.png", "--crop", "a,b"], "crop must be x,y,w,h"),
        "predict-not-run": (["predict", data, page], "RUN must be"),
        "predict-lambda": (["predict", lam, page], "cannot load the model"),
        "evaluate-missing": (["evaluate", run, root / "nowhere"], "does not exist"),
        "evaluate-unreadable": (["evaluate", run, bad], "none of the 6 evaluation images can be read"),
        "export-format": (["export", run, "--format", "nope"], "format must be one of"),
        "export-not-run": (["export", data, "--format", "onnx"], "RUN must be"),
        "serve-not-run": (["serve", root / "nowhere", "--port", "0"], "port must be an int in [1, 65535]"),
        "serve-not-run-2": (["serve", root / "nowhere", "--port", "8765"], "RUN must be"),
        "serve-port-range": (["serve", run, "--port", "70000"], "port must be an int in [1, 65535]"),
        "serve-host": (["serve", run, "--host", "no such host!"], "host must be an address of this computer"),
        "serve-upload": (["serve", run, "--max-upload-mb", "0", "--port", "8765"], "max_upload_bytes must be"),
        "serve-window": (["serve", run, "--batch-window-ms", "-5", "--port", "8765"], "batch_window_ms must be"),
        "report-not-run": (["report", root / "nowhere"], "RUN must be"),
        # looking inside
        "explain-html": (["explain", run, page], "cannot read image"),
        "feature-maps-html": (["feature-maps", run, page], "cannot read image"),
        "preview-html": (["preview", data, "--image", page, "--out", out], "cannot read image"),
        "preview-count": (["preview", data, "--count", "0", "--out", out / "p.png"], "count"),
        "show-count": (["show", data, "--count", "0", "--out", out / "s.png"], "count must be a positive int"),
        "show-unreadable": (["show", bad, "--out", out / "s.png"], "none of the dataset's images can be read"),
        "show-count-text": (["show", data, "--count", "many"], "Invalid value for '--count'"),
        # data
        "doctor-missing": (["doctor", root / "nowhere"], "does not exist"),
        "doctor-file": (["doctor", page], "not a file"),
        "split-into-source": (["split", data, data / "out"], "dest must be outside source"),
        "split-ratio": (["split", data, out / "split", "--ratio", "2"], "ratio"),
        "pack-missing": (["pack", root / "nowhere", out / "pk"], "does not exist"),
        "pack-into-data": (["pack", data, data], "OUT must be outside DATA"),
        "pack-inside-data": (["pack", data, data / "packed"], "OUT must be outside DATA"),
        "pack-into-file": (["pack", data, root / "not_a_dir"], "OUT must be a new or empty folder"),
        "export-max-images": (["export", run, "--format", "tflite", "--max-images", "-5"], "max_images must be"),
        "pack-size": (["pack", data, out / "pk", "--target-size", "0", "32"], "target_size must be"),
        "pack-shard-size": (["pack", data, out / "pk", "--shard-size", "0"], "shard_size must be a positive"),
        "pack-unreadable": (["pack", bad, out / "pk"], "none of the training images"),
        "train-cache": (["train", data, "--cache", "ram", "--runs-dir", out], "cache must be one of"),
        "train-track-file-store": ([*train, "--track", "mlflow:./mlruns"], "goes to MLflow's file store"),
        "train-from-replaced": (["train", data, "--runs-dir", root / "runs", "--name", "r", "--overwrite", "--from",
                                 run, "--epochs", "1"], "it holds the run --from starts from"),  # fmt: skip
        "triage-accept-folder": (["triage", "--accept", root / "folder_list.jsonl", "--into", data],
                                 "folder must be a path. Received: []"),  # fmt: skip
        "datasets-name": (["datasets", "download", "nosuch"], "dataset must be one of"),
        "datasets-from": (["datasets", "download", "happy_or_sad", "--from", root / "nowhere"], "source path"),
        "demo-epochs": (["demo", "--epochs", "0", "--runs-dir", out], "epochs must be a positive int"),
        # fixing the data
        "suspects-missing": (["suspects", root / "nowhere"], "does not exist"),
        "suspects-top": (["suspects", data, "--top", "-1"], "top must be 0 (all) or a positive"),
        "relabel-outside": (["relabel", data, page, "--to", "b_br"], "inside DATA"),
        "relabel-no-class": (["relabel", data], "needs image files and --to CLASS"),
        "relabel-undo-nothing": (["relabel", data, "--undo"], "nothing to undo"),
        "relabel-undo-extra": (["relabel", data, page, "--undo"], "--undo takes only DATA"),
        "models-extra": (["models", "extra"], "unexpected extra argument"),
        "backbones-extra": (["backbones", "--nosuch"], "No such option"),
        "unknown-command": (["trian", data], "No such command 'trian'"),
    }


CASES = list(bad_cases(Path("/x")))


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, monkeypatch, capsys, case):
    args, message = bad_cases(world)[case]
    before = snapshot(world)
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2, (code, err[-2000:])
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    error_lines = [line for line in lines if line.startswith("Error: ")]
    assert len(error_lines) == 1 and lines[-1].startswith("Error: "), err[-2000:]
    assert message in " ".join(err.split()), err[-2000:]
    after = snapshot(world)
    assert {k: v for k, v in after.items() if not k.startswith("out/")} == before  # inputs byte-identical
    assert not any(Path(world / "out").rglob("model.keras"))
    assert not any(p.name.startswith("owned") for p in world.iterdir())


def test_serve_on_a_port_in_use_is_one_line(world, monkeypatch, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run_cli(monkeypatch, capsys, "serve", world / "runs" / "r", "--port", taken.getsockname()[1])
    assert code == 2 and "is in use by another program" in err and "Traceback" not in err


def test_a_full_disk_mid_training_puts_the_old_run_back(world, tmp_path, monkeypatch, capsys):
    """``--overwrite`` of a run while the disk fills up: one line naming the cause, exit 2, the old run intact."""
    runs = tmp_path / "runs"
    shutil.copytree(world / "runs" / "r", runs / "r")
    before = snapshot(runs)
    from imgclf.training import control

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(runs / "r" / "state.json"))

    monkeypatch.setattr(control, "write_json", full)
    code, out, err = run_cli(monkeypatch, capsys, "train", world / "data", "--target-size", 32, 32, "--epochs", 1,
                             "--runs-dir", runs, "--name", "r", "--overwrite")  # fmt: skip
    assert code == 2 and "Traceback" not in err
    assert "No space left on device" in err and "free some disk space" in " ".join(err.split())
    assert snapshot(runs) == before and sorted(p.name for p in runs.iterdir()) == ["r"]


def test_a_bug_in_imgclf_exits_1_with_a_short_message_and_a_log(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    from imgclf.data import doctor

    def broken(*args, **kwargs):
        raise RuntimeError("an internal invariant failed")

    monkeypatch.setattr(doctor, "diagnose_folder", broken)
    code, out, err = run_cli(monkeypatch, capsys, "doctor", world / "data")
    assert code == 1 and "Traceback" not in err
    assert "Internal error (a bug in imgclf): RuntimeError: an internal invariant failed" in err
    logs = list((tmp_path / "home" / "logs").glob("crash-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "Traceback" in text and "an internal invariant failed" in text and "doctor" in text.splitlines()[0]
    assert str(logs[0]) in " ".join(err.split()).replace(" ", "") or logs[0].name in err


def test_memory_is_checked_before_it_is_allocated():
    from imgclf.errors import ImgclfError
    from imgclf.training.budget import check_training_memory, training_memory

    need = training_memory((150, 150, 3), 20, parameters=1_000_000)
    assert need["activations"] == 20 * 150 * 150 * 100 * 4 and need["weights"] == 16_000_000
    check_training_memory((150, 150, 3), 20, 1_000_000, available=2 * need["total"])
    with pytest.raises(ImgclfError, match=r"target_size \(4000, 4000\) with batch_size 20 needs about 119\.2 GB"):
        check_training_memory((4000, 4000, 3), 20, available=24 * 1024**3)
    with pytest.raises(ImgclfError, match="weights with gradients and optimizer state"):
        check_training_memory((32, 32, 3), 1, parameters=10**9, available=8 * 1024**3)


def test_all_validation_images_unreadable_still_gives_a_run_and_a_report(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    write_class_folder(data / "train", {"a": 8, "b": 8}, size=40)
    write_class_folder(data / "validation", {"a": 2, "b": 2}, size=40, start=50)
    for p in (data / "validation").rglob("*.png"):
        p.write_bytes(b"")
    (data / "validation" / "a" / "gone.png").symlink_to(tmp_path / "nowhere.png")  # a dangling link too
    code, out, err = run_cli(monkeypatch, capsys, "train", data, "--target-size", 32, 32, "--epochs", 1,
                             "--runs-dir", tmp_path / "runs", "--name", "v")  # fmt: skip
    assert code == 0 and "Traceback" not in err
    assert (tmp_path / "runs" / "v" / "report.html").is_file() and (tmp_path / "runs" / "v" / "model.keras").is_file()


# -- fuzzing ------------------------------------------------------------------------------------------------

NASTY_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "-1",
            "0",
            "1e309",
            "nan",
            "inf",
            "-inf",
            "1,2,3",
            "../..",
            "/",
            "\\",
            "\x00x",
            "é",
            "🙂",
            "--help",
            "a" * 300,
            "0x10",
            "None",
            "true",
            "[]",
            "{}",
        ]
    ),  # fmt: skip
    st.text(min_size=0, max_size=12),
)
NASTY_NUMBER = st.one_of(st.integers(-3, 5).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr))


def _train_options():
    from imgclf import settings as declared

    names = [f.name for f in declared.fields() if f.name not in ("weights", "backbone", "model", "tensorboard")]
    return names


def _check_outcome(code: int, out: str, err: str) -> None:
    assert code in (0, 2), (code, err[-3000:])
    assert "Traceback" not in out + err and "Internal error" not in err, err[-3000:]
    if code == 2:
        assert [line for line in err.splitlines() if line.strip()][-1].startswith("Error: "), err[-3000:]


FUZZ = settings(
    max_examples=int(os.environ.get("IMGCLF_FUZZ_EXAMPLES", 12)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(option=st.sampled_from(_train_options()), value=st.one_of(NASTY_TEXT, NASTY_NUMBER), second=NASTY_NUMBER)
def test_fuzz_train_options(world, tmp_path_factory, monkeypatch, capsys, option, value, second):
    """Any value of any setting: a run (1 epoch, 24x24) or one line ``Error:``; never a traceback or a change to
    the data."""
    before = snapshot(world / "data")
    runs = tmp_path_factory.mktemp("fuzz_runs")
    flag = "--" + option.replace("_", "-")
    values = [value, second] if option == "target_size" else [value]
    base = ["train", world / "data", "--runs-dir", runs, "--epochs", "1", "--target-size", "24", "24"]
    code, out, err = run_cli(monkeypatch, capsys, *base, flag, *values)
    _check_outcome(code, out, err)
    assert snapshot(world / "data") == before


def _containers(inner):
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)


YAML_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    _containers,
    max_leaves=6,
)


@FUZZ
@given(config=st.dictionaries(st.sampled_from([*_train_options(), "data", "resolved", "junk"]), YAML_VALUE,
                              max_size=3))  # fmt: skip
def test_fuzz_train_config_files(world, tmp_path_factory, monkeypatch, capsys, config):
    import yaml

    folder = tmp_path_factory.mktemp("fuzz_config")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    before = snapshot(world / "data")
    code, out, err = run_cli(monkeypatch, capsys, "train", world / "data", "--config", path, "--runs-dir",
                             folder / "runs", "--epochs", "1", "--target-size", "24", "24")  # fmt: skip
    _check_outcome(code, out, err)
    assert snapshot(world / "data") == before


@FUZZ
@given(crop=st.one_of(st.none(), NASTY_TEXT, st.lists(st.integers(-5, 60), min_size=1, max_size=5).map(
    lambda v: ",".join(map(str, v)))), flags=st.lists(st.sampled_from(["--json", "--tta"]), max_size=2, unique=True),
    image=st.sampled_from(["data/a/000.png", "page.jpg", "data", "bad", "nowhere.png", "runs"]))  # fmt: skip
def test_fuzz_predict(world, monkeypatch, capsys, crop, flags, image):
    before = snapshot(world)
    args = ["predict", world / "runs" / "r", world / image, *flags, *(["--crop", crop] if crop is not None else [])]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    _check_outcome(code, out, err)
    assert snapshot(world) == before


@FUZZ
@given(folder=st.sampled_from(["data", "bad", "page.jpg", "nowhere", "runs", "."]),
       flags=st.lists(st.sampled_from(["--json", "--quick", "--fix", "--restore", "--nosuch"]), max_size=3,
                      unique=True))  # fmt: skip
def test_fuzz_doctor(world, tmp_path_factory, monkeypatch, capsys, folder, flags):
    """doctor on anything; ``--fix`` runs on a copy (it may move bad files into the copy's .quarantine/)."""
    copy = tmp_path_factory.mktemp("fuzz_doctor") / "w"
    shutil.copytree(world, copy, symlinks=True, ignore=shutil.ignore_patterns("runs"))
    target = copy / folder if folder != "runs" else world / "runs"
    if "--fix" in flags or "--restore" in flags:
        target = copy / folder
    before, contents = snapshot(world), _contents(copy)
    code, out, err = run_cli(monkeypatch, capsys, "doctor", target, *flags)
    _check_outcome(code, out, err)
    assert snapshot(world) == before
    assert _contents(copy) == contents  # --fix/--restore move files; every byte of every file is still there


def _contents(root: Path) -> list[str]:
    """SHA-256 of every regular file under ``root`` (links not followed), quarantine manifests left out."""
    digests = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or (name == "manifest.json" and ".quarantine" in path.parts):
                continue
            digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    return sorted(digests)


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "show", "doctor", "split", "preview"])
def test_no_command_hangs_or_double_counts_on_links_and_fifos(world, tmp_path, monkeypatch, capsys, command):
    """A DATA with a link to its parent, a self-link and a FIFO named .jpg: every command finishes (an alarm fails
    the test instead of hanging the suite) and sees each image once."""
    import signal

    data = tmp_path / "data"
    shutil.copytree(world / "data", data)
    (data / "a" / "up").symlink_to("..")
    (data / "a" / "self").symlink_to(".")
    os.mkfifo(data / "b" / "pipe.jpg")
    run = world / "runs" / "r"
    args = {  # fmt: skip
        "train": ["train", data, "--target-size", 24, 24, "--epochs", 1, "--runs-dir", tmp_path / "runs"],
        "predict": ["predict", run, data],
        "evaluate": ["evaluate", run, data],
        "show": ["show", data, "--out", tmp_path / "s.png", "--target-size", 16, 16],
        "doctor": ["doctor", data],
        "split": ["split", data, tmp_path / "split"],
        "preview": ["preview", data, "--out", tmp_path / "p.png", "--target-size", 16, 16, "--count", 4],
    }[command]
    signal.alarm(120)
    try:
        code, out, err = run_cli(monkeypatch, capsys, *args)
    finally:
        signal.alarm(0)
    assert code == 0 and "Traceback" not in err, err[-2000:]
    if command == "train":
        assert "Found 16 training images" in err and "Found 4 validation images" in err
    if command == "predict":
        assert len(out.strip().splitlines()) == 20
    if command == "split":
        assert len([p for p in (tmp_path / "split").rglob("*.png")]) == 20


def test_a_read_only_runs_folder_is_one_line(world, tmp_path, monkeypatch, capsys):
    """Root may write anywhere, so the refusal is simulated where the run folder is made."""
    import pathlib

    real_mkdir = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(tmp_path / "ro")):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    code, out, err = run_cli(monkeypatch, capsys, "train", world / "data", "--runs-dir", tmp_path / "ro", "--epochs", 1)
    assert code == 2 and "Traceback" not in err
    assert "Permission denied" in err and "choose a folder you can write to" in " ".join(err.split())


@pytest.fixture(scope="module")
def packed_world(world, tmp_path_factory):
    from imgclf.data.images import ImageSpec
    from imgclf.pipeline.records import pack

    out = tmp_path_factory.mktemp("packed_world") / "packed"
    pack(world / "data", out, image=ImageSpec((24, 24)))
    return out


MANIFEST_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats() | st.text(max_size=12),
    _containers,
    max_leaves=8,
)


@FUZZ
@given(key=st.sampled_from(["classes", "target_size", "color_mode", "interpolation", "splits", "version", "format",
                            "train", "validation", "count", "labels", "names", "shards", "file", "records", "sha256"]),
       value=MANIFEST_VALUE)  # fmt: skip
def test_fuzz_pack_manifests(packed_world, tmp_path_factory, key, value):
    """Any value anywhere in a pack's manifest: it loads or ImgclfError names the problem; nothing else."""
    import json

    from imgclf import ImgclfError
    from imgclf.data.packed import load_packed

    packed = packed_world
    folder = tmp_path_factory.mktemp("manifest")
    shutil.copytree(packed, folder, dirs_exist_ok=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    targets = [manifest, manifest["splits"], manifest["splits"]["train"], manifest["splits"]["train"]["shards"][0]]
    for target in targets:
        if key in target:
            target[key] = value
            break
    else:
        manifest[key] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    try:
        load_packed(folder)
    except ImgclfError:
        pass


def test_a_full_disk_names_the_file_and_what_this_command_kept(tmp_path, monkeypatch, capsys):
    """A write that fails with no file named (a full disk mid-``write``) names the file being written, and the
    message is the command's own: a relabel speaks of its manifest and undo, never of runs and exports."""
    data = write_class_folder(tmp_path / "data", {"a": 3}, size=40)
    write_class_folder(data, {"b": 3}, size=40, start=10)
    manifest = data / ".relabel" / "manifest.json"
    before = snapshot(data)
    real, writes = Path.write_text, []

    def full_at(n):
        def write_text(self, *args, **kwargs):
            if self.name == "manifest.json":
                writes.append(self)
                if len(writes) == n:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no file named
            return real(self, *args, **kwargs)

        return write_text

    monkeypatch.setattr(Path, "write_text", full_at(1))  # the batch cannot be recorded: nothing moves
    code, _, err = run_cli(monkeypatch, capsys, "relabel", data, data / "a" / "000.png", "--to", "b")
    said = " ".join(err.split())
    assert code == 2 and "Traceback" not in err, err
    assert f"cannot record the batch in '{manifest}': No space left on device. Nothing was moved." in said, said
    assert {k: v for k, v in snapshot(data).items() if not k.startswith(".relabel")} == before
    writes.clear()
    monkeypatch.setattr(Path, "write_text", full_at(2))  # moved, then not marked done: undo still works
    code, _, err = run_cli(monkeypatch, capsys, "relabel", data, data / "a" / "000.png", "--to", "b")
    said = " ".join(err.split())
    assert code == 2 and "all 1 file(s) moved, but" in said and "--undo` still puts them back" in said, said
    assert "export" not in said and "--resume" not in said
    monkeypatch.setattr(Path, "write_text", real)
    code, out, err = run_cli(monkeypatch, capsys, "relabel", data, "--undo")
    assert code == 0 and "1 file(s) moved back" in out, err
    assert {k: v for k, v in snapshot(data).items() if not k.startswith(".relabel")} == before
    from imgclf.cli import os_error_message

    for command, kept in (("report", "nothing half-written was kept"), ("train", "--resume"),
                          ("relabel", "relabel DATA --undo puts them back"), ("doctor", "doctor DATA --restore"),
                          ("export", "a failed export left nothing")):  # fmt: skip
        said = os_error_message(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/x/f"), command)
        assert said.startswith("No space left on device: '/x/f'; free some disk space; ") and kept in said
        assert command == "train" or "run" not in said.replace("relabel", "")
    named = tmp_path / "out.json"

    def no_name(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", no_name)
    from imgclf import _io

    with pytest.raises(OSError) as info:
        _io.write_json(named, {})
    assert info.value.filename == str(named) and not list(tmp_path.glob(".out.json.*"))  # named, nothing left
