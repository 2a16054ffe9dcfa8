"""The command line: train → predict → evaluate end to end, the demo, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from helpers import cli_train, run_cli, write_class_folder, write_split_folder


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """A run folder trained by `imgclf train` (1 epoch, 32x32)."""
    root = tmp_path_factory.mktemp("cli")
    data = write_split_folder(root / "data", {"cats": 12, "dogs": 12}, {"cats": 4, "dogs": 4})
    cli_train(
        data, "--target-size", 32, 32, "--epochs", 2, "--batch-size", 8, "--runs-dir", root / "runs", "--name", "r1"
    )
    return data, root / "runs" / "r1"


def test_train_writes_run_folder(cli_run):
    _, run = cli_run
    for name in (
        "model.keras",
        "classes.json",
        "config.yaml",
        "history.csv",
        "summary.txt",
        "plots/accuracy.png",
        "plots/loss.png",
    ):
        assert (run / name).is_file(), name
    assert json.loads((run / "classes.json").read_text()) == ["cats", "dogs"]
    import yaml

    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["target_size"] == [32, 32] and config["epochs"] == 2 and config["model"] is None
    assert config["resolved"]["model"] == "course_small" and config["resolved"]["class_mode"] == "binary"
    assert config["data"]["train_images"] == 24


def test_predict_plain_and_json(cli_run, monkeypatch, capsys):
    data, run = cli_run
    code, out, _ = run_cli(monkeypatch, capsys, "predict", run, data / "validation" / "cats")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 4
    path, label, prob = lines[0].split("\t")
    from imgclf import ImageClassifier

    expected = ImageClassifier.load(run).predict_proba([path])[0]  # the CLI prints what the library predicts
    assert path.endswith("100.png") and label == ["cats", "dogs"][expected.argmax()]
    assert float(prob) == pytest.approx(expected.max(), abs=1e-4)
    code, out, _ = run_cli(monkeypatch, capsys, "predict", run, data / "validation" / "dogs" / "100.png", "--json")
    record = json.loads(out)
    assert record["label"] in ("cats", "dogs") and set(record["probabilities"]) == {"cats", "dogs"}
    assert record["probability"] == max(record["probabilities"].values())


def test_evaluate_writes_metrics(cli_run, monkeypatch, capsys):
    data, run = cli_run
    own = (run / "metrics.json").read_bytes()
    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", run, data)
    assert code == 0 and "Confusion matrix" in out and "precision" in out
    metrics = json.loads((run / "evaluations" / "data" / "metrics.json").read_text())
    assert metrics["n"] == 8 and sum(map(sum, metrics["confusion_matrix"])) == 8
    assert (run / "evaluations" / "data" / "evaluation" / "confusion_matrix.png").is_file()
    assert (run / "metrics.json").read_bytes() == own  # the run's own record (its validation images) is kept
    other = write_class_folder(run.parent.parent / "other" / "data", {"cats": 2, "dogs": 2}, start=300)
    code, _, _ = run_cli(monkeypatch, capsys, "evaluate", run, other)  # another folder of the same name
    assert code == 0 and json.loads((run / "evaluations" / "data-2" / "metrics.json").read_text())["n"] == 4
    code, _, _ = run_cli(monkeypatch, capsys, "evaluate", run, data)  # the same data again: its folder, replaced
    assert code == 0 and sorted(p.name for p in (run / "evaluations").iterdir()) == ["data", "data-2"]


def test_demo_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    code, out, err = run_cli(
        monkeypatch, capsys, "demo", "--epochs", "1", "--runs-dir", tmp_path / "runs", "--name", "d"
    )
    assert code == 0
    assert "Found 1437 training images belonging to 10 classes" in err
    run = tmp_path / "runs" / "d"
    assert (run / "plots" / "accuracy.png").is_file() and (run / "metrics.json").is_file()
    assert len(list((tmp_path / "home" / "datasets" / "digits").rglob("*.png"))) == 1797
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0.5  # 10 classes: chance is 0.1


def _bad(tmp_path):
    one = write_class_folder(tmp_path / "one", {"cats": 2})
    empty = write_class_folder(tmp_path / "empty", {"cats": 2})
    (empty / "dogs").mkdir()
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "img.png").write_bytes(b"")
    good = write_class_folder(tmp_path / "good", {"a": 4, "b": 4})
    return {
        "no-subfolders": (["train", flat], "has no class subfolders"),
        "one-class": (["train", one], "at least 2 classes"),
        "empty-class": (["train", empty], "class folder 'dogs'"),
        "target-size": (
            ["train", good, "--target-size", "0", "150"],
            "target_size must be two positive ints (height, width). Received: (0, 150)",
        ),
        "missing-path": (["train", tmp_path / "nowhere"], "DATA folder does not exist and is not a named dataset"),
        "bad-model": (["train", good, "--model", "vgg99"], "model must be one of"),
        "predict-not-a-run": (["predict", good, good], "RUN must be an imgclf run folder"),
        "evaluate-not-a-run": (["evaluate", tmp_path / "nowhere", good], "RUN must be an imgclf run folder"),
    }


BAD_CASES = ["no-subfolders", "one-class", "empty-class", "target-size", "missing-path", "bad-model",
             "predict-not-a-run", "evaluate-not-a-run"]  # fmt: skip


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_one_line_error(tmp_path, monkeypatch, capsys, case):
    args, message = _bad(tmp_path)[case]
    if args[0] == "train":
        args = [*args, "--runs-dir", tmp_path / "runs"]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    text = " ".join(err.split())
    assert text.startswith("Error: ") and message in text
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("model.keras"))


def test_existing_run_name_refused(cli_run, monkeypatch, capsys):
    data, run = cli_run
    code, _, err = run_cli(
        monkeypatch, capsys, "train", data, "--runs-dir", run.parent, "--name", run.name, "--target-size", "32", "32"
    )
    assert code == 2 and "already exists" in err and "overwrite" in err


def test_help_lists_commands(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "--help")
    assert code == 0
    for command in ("train", "predict", "evaluate", "demo", "models"):
        assert command in out


def test_train_options_come_from_the_settings_declaration():
    """Every setting is a `train` option with its declared help and default; no option drifts from the library."""
    import typer.main

    from imgclf import settings
    from imgclf.cli import app

    command = typer.main.get_command(app).commands["train"]
    options = {p.name: p for p in command.params if p.param_type_name == "option"}
    for f in settings.fields():
        option = options[f.name]
        assert option.opts[0] == "--" + f.name.replace("_", "-")
        assert option.help == f"{f.metadata['help']} (default: {settings.shown_default(f)})"
        assert option.default is None  # not given: the config file's value, else the declared default
    assert "(default: auto" in options["precision"].help  # the drift the issue found: help said float32
    # run control and the cluster: not settings
    own = {"config", "resume", "from_run", "name", "runs_dir", "overwrite", "workers", "worker_index"}
    from imgclf.cli._settings import AUG_FLAGS

    assert set(options) - set(settings.names()) - set(AUG_FLAGS) == own


def test_overwrite_replaces_only_runs_and_puts_the_old_run_back_on_failure(cli_run, tmp_path, monkeypatch, capsys):
    data, run = cli_run
    photos = tmp_path / "runs" / "photos"  # not a run: a folder of someone's pictures
    write_class_folder(photos, {"holiday": 2})
    before = sorted(p.read_bytes() for p in photos.rglob("*.png"))
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--runs-dir", tmp_path / "runs", "--name", "photos",
                           "--overwrite", "--target-size", "32", "32", "--epochs", "1")  # fmt: skip
    assert code == 2 and "not an imgclf run folder" in err
    assert sorted(p.read_bytes() for p in photos.rglob("*.png")) == before  # untouched

    code, _, err = run_cli(monkeypatch, capsys, "train", data.parent, "--runs-dir", data.parent.parent, "--name",
                           data.parent.name, "--overwrite")  # fmt: skip
    assert code == 2  # the folder holding DATA is never replaced (here: not a run either)

    old_model = (run / "model.keras").read_bytes()
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        "train",
        data,
        "--runs-dir",
        run.parent,
        "--name",
        run.name,
        "--overwrite",
        "--target-size",
        "8",
        "8",
    )  # fmt: skip  (too small: fails in fit)
    assert code == 2 and "too small" in err
    assert (run / "model.keras").read_bytes() == old_model and not (run / ".lock").exists()  # the old run is back


def test_runs_inside_data_are_not_classes(tmp_path, monkeypatch, capsys):
    from imgclf import load_folder

    data = write_class_folder(tmp_path / "data", {"cats": 6, "dogs": 6})
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--runs-dir", data / "runs", "--name", "a",
                           "--target-size", "32", "32", "--epochs", "1", "--batch-size", "4")  # fmt: skip
    assert code == 0, err
    assert load_folder(data).class_names == ("cats", "dogs")  # runs/ (imgclf's own output) is no third class


def test_new_run_never_replaces_a_run_holding_the_data_nor_one_being_written(tmp_path):
    import os

    from imgclf import ImgclfError
    from imgclf.runs.folder import new_run

    odd = tmp_path / "runs" / "odd"  # a run folder someone also keeps the data in
    write_class_folder(odd / "data", {"a": 2, "b": 2})
    (odd / "classes.json").write_text('["a", "b"]')
    (odd / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(ImgclfError, match="holds the data"):
        with new_run(tmp_path / "runs", "odd", overwrite=True, protect=[odd / "data"]):
            pass
    assert (odd / "data" / "a").is_dir()
    busy = tmp_path / "runs" / "busy"
    busy.mkdir()
    (busy / ".lock").write_text(str(os.getppid()))  # a live process (our parent) is writing it
    with pytest.raises(ImgclfError, match="being written by process"):
        with new_run(tmp_path / "runs", "busy", overwrite=True):
            pass
    with new_run(tmp_path / "runs", "fresh") as run:
        assert (run / ".lock").read_text() == str(os.getpid())
    assert not (run / ".lock").exists()


HEAP_PROBE = """
import ctypes, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype, libc.malloc.restype = MallInfo2, ctypes.c_void_p
from imgclf.cli import bound_heap_growth
print(bound_heap_growth())
libc.free(ctypes.c_void_p(libc.malloc(8 << 20)))  # under glibc's default this raises its threshold to 8 MB
before = libc.mallinfo2().hblks
libc.malloc(4 << 20)
print(libc.mallinfo2().hblks - before)  # 0: the 4 MB block came from the heap, as TensorFlow's tensors must
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tunables (Linux)")
def test_the_command_line_caps_glibc_arenas_and_leaves_large_buffers_on_the_heap(tmp_path):
    """`imgclf` caps glibc's arenas at start-up (the packed-shard stream's RSS grew 30 % over 4 epochs without
    it) but no longer lowers the mmap threshold: with a 64 KB threshold every tensor of TensorFlow's training steps
    was mapped and unmapped, and an augmented epoch took up to 2.3x as long (issue 23). An environment that sets
    either tunable itself is left alone; the library never sets them."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX")}
    done = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split() == ["True", "0"], done.stderr[-2000:]
    for name, value in (("MALLOC_ARENA_MAX", "4"), ("MALLOC_MMAP_THRESHOLD_", "1048576")):
        done = subprocess.run([sys.executable, "-c", HEAP_PROBE], capture_output=True, text=True, timeout=120,
                              env={**env, name: value})  # fmt: skip
        assert done.stdout.split()[0] == "False"
    src = Path(__file__).resolve().parents[2] / "src" / "imgclf"
    callers = [p for p in src.rglob("*.py") if "bound_heap_growth()" in p.read_text() and p.parent.name != "cli"]
    assert callers == []


def test_the_script_runs_exit_handlers_then_ends_without_teardown_and_keeps_the_exit_code(tmp_path, monkeypatch):
    import atexit
    import subprocess

    from imgclf import cli

    ran, ended = [], []
    monkeypatch.setattr(sys, "argv", ["imgclf", "train", str(tmp_path / "missing")])
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append(True))
    monkeypatch.setattr(cli.os, "_exit", ended.append)
    monkeypatch.setattr(sys, "gettrace", lambda: None)  # as when no coverage tool watches the tests
    cli.console()
    assert ran == [True] and ended == [2]  # a user's mistake: exit 2, after the exit handlers ran
    monkeypatch.setattr(sys, "getprofile", lambda: object())  # a profiler writes its file after the command returns
    with pytest.raises(SystemExit) as info:
        cli.console()
    assert info.value.code == 2 and ended == [2]
    monkeypatch.undo()
    monkeypatch.setattr(sys, "argv", ["imgclf", "train", str(tmp_path / "missing")])
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: ran.append(True))
    monkeypatch.setattr(cli.os, "_exit", ended.append)
    monkeypatch.setattr(sys, "gettrace", lambda: None)
    # a live non-daemon thread: Python's own exit, which waits for it
    import threading

    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        with pytest.raises(SystemExit) as info:
            cli.console()
        assert info.value.code == 2 and ended == [2]
    finally:
        release.set()
        worker.join()
    # the real script: an exit handler's output arrives, and so does the code
    probe = ("import atexit, sys; atexit.register(lambda: print('handler ran', flush=True)); "
             "sys.argv = ['imgclf', 'train', sys.argv[1]]; from imgclf.cli import console; console()")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "missing")], capture_output=True, text=True)
    assert done.returncode == 2 and "handler ran" in done.stdout and "Error" in done.stderr
