"""Issue 36: files imgclf reads back are untrusted. Manifests that name paths outside DATA, files whose SHA-256
changed, or batches of the wrong shape move nothing and end in one line; writers never replace a file; an
interrupted batch is undone as far as it went."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from helpers import run_cli, wait_until, write_class_folder

from imgclf.curation import relabel as moves
from imgclf.data import quarantine as q
from imgclf.data.moves import confined, move_file
from imgclf.errors import ImgclfError


def snapshot(*roots):
    out = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = os.path.join(folder, name)
                out[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "data", {"a_tl": 3, "b_br": 3}, size=32)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "else.sh").write_text("#!/bin/sh\necho owned\n")
    return data, elsewhere


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("source", ["{elsewhere}/else.sh", "../elsewhere/else.sh", "a_tl/../../elsewhere/x.png"])
def test_a_planted_relabel_manifest_never_writes_or_reads_outside_data(world, monkeypatch, capsys, source):
    data, elsewhere = world
    target = data / "a_tl" / "000.png"
    source = source.format(elsewhere=elsewhere)
    (data / ".relabel").mkdir()
    (data / ".relabel" / "manifest.json").write_text(json.dumps(
        [{"to": "a_tl", "done": True, "moves": [{"from": source, "to": "a_tl/000.png", "sha256": sha(target)}]}]))
    before = snapshot(data, elsewhere)
    code, _, err = run_cli(monkeypatch, capsys, "relabel", data, "--undo")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "did not record" in err or "outside" in err
    assert snapshot(data, elsewhere) == before


def test_a_planted_manifest_cannot_pull_an_outside_file_in(world, monkeypatch, capsys):
    data, elsewhere = world
    secret = elsewhere / "else.sh"
    (data / ".relabel").mkdir()
    (data / ".relabel" / "manifest.json").write_text(json.dumps(
        [{"to": "a_tl", "done": True, "moves": [{"from": "a_tl/new.png", "to": str(secret), "sha256": sha(secret)}]}]))
    before = snapshot(data, elsewhere)
    code, _, err = run_cli(monkeypatch, capsys, "relabel", data, "--undo")
    assert code == 2 and "expected a path relative to" in err
    assert snapshot(data, elsewhere) == before


@pytest.mark.parametrize("manifest", ['[{"moves": 5}]', '[{"moves": [{"from": "a_tl/000.png"}]}]', '{"a": 1}',
                                      '[{"moves": [{"from": 1, "to": 2, "sha256": 3}]}]', "not json"])
def test_a_relabel_manifest_of_the_wrong_shape_is_one_line(world, monkeypatch, capsys, manifest):
    data, _ = world
    (data / ".relabel").mkdir()
    (data / ".relabel" / "manifest.json").write_text(manifest)
    code, _, err = run_cli(monkeypatch, capsys, "relabel", data, "--undo")
    assert code == 2 and "unreadable" in err and "Traceback" not in err


def test_inbox_batches_are_signed_by_the_user_and_a_forged_one_is_refused(world, monkeypatch, tmp_path):
    data, elsewhere = world
    from PIL import Image

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(inbox / "new.png")
    done = moves.file_into(data, [(inbox / "new.png", "a_tl")])
    batch = json.loads((data / ".relabel" / "manifest.json").read_text())[-1]
    assert os.path.isabs(done[0]["from"]) and len(batch["signature"]) == 64
    forged = dict(batch, moves=[dict(batch["moves"][0], **{"from": str(elsewhere / "planted.png")})])
    (data / ".relabel" / "manifest.json").write_text(json.dumps([forged]))
    with pytest.raises(ImgclfError, match="did not record"):
        moves.undo(data)
    assert not (elsewhere / "planted.png").exists() and (data / "a_tl" / "new.png").is_file()
    (data / ".relabel" / "manifest.json").write_text(json.dumps([batch]))
    assert len(moves.undo(data)) == 1 and (inbox / "new.png").is_file()  # the user's own batch goes back


def test_a_planted_quarantine_manifest_stays_inside_data_and_checks_hashes(world):
    data, elsewhere = world
    qdir = data / ".quarantine" / "a_tl"
    qdir.mkdir(parents=True)
    (qdir / "x.png").write_bytes((data / "a_tl" / "000.png").read_bytes())
    (qdir / "y.png").write_bytes(b"changed since")
    entries = [
        {"original": str(elsewhere / "x.png"), "quarantined": ".quarantine/a_tl/x.png", "sha256": sha(qdir / "x.png")},
        {"original": "../elsewhere/x.png", "quarantined": ".quarantine/a_tl/x.png", "sha256": sha(qdir / "x.png")},
        {"original": "a_tl/x.png", "quarantined": "../elsewhere/else.sh", "sha256": sha(elsewhere / "else.sh")},
        {"original": "a_tl/x.png", "quarantined": "a_tl/001.png", "sha256": sha(data / "a_tl" / "001.png")},
        {"original": "a_tl/y.png", "quarantined": ".quarantine/a_tl/y.png", "sha256": "0" * 64},
        {"original": "a_tl/gone.png", "quarantined": ".quarantine/a_tl/gone.png", "sha256": "0" * 64},
    ]
    (data / ".quarantine" / "manifest.json").write_text(json.dumps(entries))
    before = snapshot(data, elsewhere)
    restored = q.restore(data)
    assert list(restored) == [] and len(restored.kept) == len(entries)
    assert snapshot(data, elsewhere) == {**before, str(data / ".quarantine" / "manifest.json"):
                                         snapshot(data)[str(data / ".quarantine" / "manifest.json")]}
    assert json.loads((data / ".quarantine" / "manifest.json").read_text()) == entries  # nothing orphaned


def test_quarantine_refuses_paths_out_of_data(world):
    data, elsewhere = world
    for rel in ["../elsewhere/else.sh", str(elsewhere / "else.sh"), ".relabel/manifest.json"]:
        with pytest.raises(ImgclfError):
            q.quarantine(data, [rel])
    assert (elsewhere / "else.sh").is_file()


def test_moves_never_replace_and_an_interrupted_batch_undoes_as_far_as_it_went(world, monkeypatch, capsys):
    data, _ = world
    a, b = data / "a_tl" / "000.png", data / "b_br" / "000.png"
    with pytest.raises(FileExistsError):
        move_file(a, b)
    assert a.is_file() and sha(a) != sha(b)
    # a relabel killed after the first file's link, before its unlink, and before the others moved
    files = [data / "a_tl" / f"00{k}.png" for k in range(3)]
    renamed = [data / "a_tl" / f"x{k}.png" for k in range(3)]
    for f, r in zip(files, renamed):
        os.rename(f, r)
    before = snapshot(data)
    real_move = moves.move_file
    calls = []

    def dies(source, target):
        calls.append(source)
        if len(calls) == 1:
            os.link(source, target)  # the link is made ...
        raise KeyboardInterrupt  # ... and the process "dies" before the unlink

    monkeypatch.setattr(moves, "move_file", dies)
    with pytest.raises(KeyboardInterrupt):
        moves.relabel(data, renamed, "b_br")
    monkeypatch.setattr(moves, "move_file", real_move)
    code, out, err = run_cli(monkeypatch, capsys, "relabel", data, "--undo")
    assert code == 0 and "0 file(s) moved back" in out and "leftover" in err
    assert {k: v for k, v in snapshot(data).items() if ".relabel" not in k} == before


def test_relabel_refuses_a_class_folder_that_links_out_and_non_images(world, tmp_path):
    data, elsewhere = world
    (data / "c_out").symlink_to(elsewhere)
    with pytest.raises(ImgclfError, match="linked folder"):
        moves.relabel(data, [data / "a_tl" / "000.png"], "c_out")
    (data / "a_tl" / "notes.png").write_text("not a picture")
    with pytest.raises(ImgclfError, match="not an image"):
        moves.relabel(data, [data / "a_tl" / "notes.png"], "b_br")
    assert (data / "a_tl" / "000.png").is_file() and len(os.listdir(elsewhere)) == 1


def test_confined_follows_folder_links_but_not_the_name(tmp_path):
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    (root / "out").symlink_to(tmp_path)
    (root / "a" / "dangling.jpg").symlink_to(tmp_path / "nowhere")
    assert confined(root, "a/dangling.jpg", "t") == root / "a" / "dangling.jpg"
    for bad in ["out/x", "/etc/passwd", "../x", "a/../../x", "", 5]:
        with pytest.raises(ImgclfError):
            confined(root, bad, "t")


@pytest.mark.parametrize("field, value", [
    ("epochs", ["1", "--runs-dir", "/elsewhere"]), ("target_size", "227,227,--runs-dir,/elsewhere"),
    ("target_size", ["227", "--overwrite"]), ("model", ["course_small", "--config", "/x.yaml"]),
    ("backbone", {"from": "/elsewhere"}), ("augment", {"rotation_range": 40}), ("seed", True),
    ("epochs", "3 --overwrite"),
    ("learning_rate", "1e-3 --from /x"), ("weights", "a\x00b"), ("target_size", "-1 5"),
])  # fmt: skip
def test_no_studio_form_value_becomes_an_option(tmp_path, field, value):
    """Issue 36: every train-form value is parsed as its setting's type before a command line is built."""
    from imgclf.studio.jobs import train_command

    write_class_folder(tmp_path / "shapes", {"a_tl": 2, "b_br": 2}, size=32)
    try:
        argv, run = train_command(tmp_path, {"data": "shapes", "name": "r", field: value})
    except ImgclfError as exc:
        assert field in str(exc) and "\n" not in str(exc)
        return
    options = [a.split("=")[0] for a in argv if a.startswith("--")]
    assert options.count("--runs-dir") == 1 and not {"--overwrite", "--config", "--from"} & set(options)
    assert run == tmp_path / "runs" / "r"


def test_studio_form_values_of_the_right_type_pass_through(tmp_path):
    from imgclf.studio.jobs import train_command

    write_class_folder(tmp_path / "shapes", {"a_tl": 2, "b_br": 2}, size=32)
    argv, _ = train_command(tmp_path, {"data": "shapes", "name": "r", "target_size": "48, 48", "epochs": "3",
                                       "learning_rate": 0.01, "model": "course_small", "seed": 0})  # fmt: skip
    assert {"--model=course_small", "--epochs=3", "--learning-rate=0.01", "--seed=0"} <= set(argv)
    assert argv[argv.index("--target-size") + 1 : argv.index("--target-size") + 3] == ["48", "48"]


def test_a_studio_job_that_cannot_start_fails_with_its_reason_and_the_queue_moves_on(tmp_path):
    """Issue 36: a job whose output folder cannot be made (a file in the way, a read-only project) or whose
    command is not there was left "running" with no process, and every later job "queued" for good."""
    import sys

    from imgclf.studio.jobs import Jobs

    (tmp_path / "blocked").write_text("a file where a folder should be")
    jobs = Jobs(tmp_path)
    first = jobs.submit_command("triage", [sys.executable, "-c", "print(1)"], output=tmp_path / "blocked" / "x.jsonl")
    second = jobs.submit_command("triage", [str(tmp_path / "no-such-program")])
    third = jobs.submit_command("triage", [sys.executable, "-c", "print('ok')"], output=tmp_path / "out" / "x.jsonl")
    assert first.status == "failed" and "could not start" in first.log[-1] and "blocked" in first.log[-1]
    assert second.status == "failed" and "could not start" in second.log[-1]
    wait_until(lambda: third.status not in ("queued", "running"), 30, "the third job ending")
    assert third.status == "finished" and (tmp_path / "out" / "x.jsonl").read_text() == "ok\n"
    assert jobs.stop(first.id).status == "failed"  # Stop on it: nothing to stop, no error


def test_studio_bodies_of_the_wrong_shape_and_a_read_only_project_answer_one_error_line(tmp_path):
    """Issue 36: `"files": 5`, a list or text/plain body gave 500 or 422 `{"detail"}`; a read-only project bare
    500s; and the studio had no /health."""
    from fastapi.testclient import TestClient
    from helpers.studio import ORIGIN

    from imgclf.studio.app import create_studio

    project = tmp_path / "project"
    write_class_folder(project / "pets", {"a_tl": 3, "b_br": 3}, size=32)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        assert client.get("/health").json() == {"status": "ok"}
        for kwargs in ({"json": {"data": "pets", "files": 5}}, {"json": ["pets"]},
                       {"content": b"files=1", "headers": {**ORIGIN, "content-type": "text/plain"}}):
            kwargs.setdefault("headers", ORIGIN)
            answer = client.post("/api/quarantine", **kwargs)
            assert answer.status_code in (400, 422) and set(answer.json()) == {"error"}, answer.text
        os.chmod(project / "pets", 0o555)
        try:
            import errno

            from imgclf.data import quarantine as q

            def read_only(*a, **k):
                raise OSError(errno.EROFS, "Read-only file system", str(project / "pets" / ".quarantine"))

            real = q._quarantine
            q._quarantine = read_only  # (root ignores permissions: the refusal is simulated where it would happen)
            answer = client.post("/api/quarantine", json={"data": "pets", "files": ["pets/a_tl/000.png"]},
                                 headers=ORIGIN)  # fmt: skip
            assert answer.status_code == 409 and "Read-only" in answer.json()["error"]
        finally:
            q._quarantine = real
            os.chmod(project / "pets", 0o755)
    assert (project / "pets" / "a_tl" / "000.png").is_file()
