"""Issue 36: hypothesis fuzzes what imgclf reads back — relabel and quarantine manifests, triage's JSON lines (the CLI's
``--accept`` and the studio's inbox), the studio's train-form values and captured pictures. Whatever the bytes, each
ends in success or one ``Error:`` line (exit 2; a 4xx ``{"error"}`` in the studio), nothing outside DATA changes,
and no picture is lost: the multiset of file contents is the same before and after.

``IMGCLF_FUZZ_EXAMPLES`` sets the examples a test (12 by default: the suite stays fast; 200 for a deeper look)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from helpers import run_cli, write_class_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgclf.errors import ImgclfError

FUZZ = settings(
    max_examples=int(os.environ.get("IMGCLF_FUZZ_EXAMPLES", 12)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def contents(*roots: Path) -> Counter:
    """The multiset of SHA-256s of every regular file under ``roots`` except imgclf's manifests and keys."""
    found = Counter()
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                if path.is_file() and not path.is_symlink() and name not in ("manifest.json", "manifest.key"):
                    found[hashlib.sha256(path.read_bytes()).hexdigest()] += 1
    return found


def files(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def world(tmp_path, monkeypatch):
    """DATA (two classes), an inbox of loose pictures beside it, and a folder elsewhere with a script and a picture."""
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "data", {"a_tl": 3, "b_br": 3}, size=32)
    inbox = write_class_folder(tmp_path / "inbox", {"x": 3}, size=32, start=50) / "x"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "else.sh").write_text("#!/bin/sh\necho owned\n")
    (elsewhere / "pic.png").write_bytes((data / "a_tl" / "000.png").read_bytes())
    return data, inbox, elsewhere


#: The files of the world as made (fixed: hypothesis needs the same strategies for every example).
DATA_FILES = [f"{c}/{k:03d}.png" for c in ("a_tl", "b_br") for k in range(3)]
INBOX_FILES = [f"{k:03d}.png" for k in (50, 51, 52)]


def _pathish(world):
    data, inbox, elsewhere = world
    named = DATA_FILES + ["a_tl/new.png", "../elsewhere/else.sh", "a_tl/../../elsewhere/pic.png", "", "/",
                          str(elsewhere / "else.sh"), str(elsewhere / "pic.png"), str(inbox / "050.png"), "a_tl",
                          ".quarantine/a_tl/000.png", ".relabel/manifest.json", "a_tl/\x00.png"]  # fmt: skip
    return st.sampled_from(named) | st.text(max_size=10)


def _any_json():
    return st.recursive(
        st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6,
    )


#: SHA-256s of two pictures of the world (what ``write_class_folder`` makes is the same every time).
DIGESTS = []


def _digests(world):
    if not DIGESTS:
        DIGESTS.extend(hashlib.sha256((world[0] / name).read_bytes()).hexdigest() for name in DATA_FILES[:2])
    return st.sampled_from([*DIGESTS, "0" * 64, "", None]) | st.integers() | st.text(max_size=4)


def _one_error_line(code: int, err: str) -> None:
    assert code in (0, 2), err[-2000:]
    assert "Traceback" not in err and "Internal error" not in err, err[-2000:]
    if code == 2:
        assert sum(line.startswith("Error: ") for line in err.splitlines()) == 1, err[-2000:]


def _planted(world, monkeypatch, capsys, manifest_file: Path, manifest, *command) -> None:
    """Plant ``manifest``, run ``imgclf COMMAND``: one line at most, nothing outside DATA changed, no file lost."""
    root, inbox, elsewhere = world
    manifest_file.parent.mkdir(exist_ok=True)
    manifest_file.write_text(json.dumps(manifest))
    before, outside = contents(root, inbox), files(elsewhere)
    code, _, err = run_cli(monkeypatch, capsys, *command)
    _one_error_line(code, err)
    assert files(elsewhere) == outside and contents(root, inbox) == before


@FUZZ
@given(data=st.data())
def test_fuzz_relabel_manifests(world, monkeypatch, capsys, data):
    root, inbox, elsewhere = world
    move = st.fixed_dictionaries({"from": _pathish(world), "to": _pathish(world)}, optional={"sha256": _digests(world)})
    batch = st.fixed_dictionaries({"moves": st.lists(move | _any_json(), max_size=3)},
                                  optional={"to": st.text(max_size=6), "done": st.booleans() | _any_json(),
                                            "signature": st.text(max_size=8)})  # fmt: skip
    manifest = data.draw(st.lists(batch, min_size=1, max_size=2) | _any_json())
    _planted(world, monkeypatch, capsys, root / ".relabel" / "manifest.json", manifest, "relabel", root, "--undo")


@FUZZ
@given(data=st.data())
def test_fuzz_quarantine_manifests(world, monkeypatch, capsys, data):
    root, inbox, elsewhere = world
    aside = root / ".quarantine" / "a_tl"
    aside.mkdir(parents=True, exist_ok=True)
    (aside / "000.png").write_bytes((root / "a_tl" / "000.png").read_bytes())
    entry = st.fixed_dictionaries({"original": _pathish(world), "quarantined": _pathish(world)},
                                  optional={"sha256": _digests(world), "problems": _any_json()})  # fmt: skip
    manifest = data.draw(st.lists(entry | _any_json(), min_size=1, max_size=3) | _any_json())
    _planted(world, monkeypatch, capsys, root / ".quarantine" / "manifest.json", manifest, "doctor", root, "--restore")


@FUZZ
@given(data=st.data())
def test_fuzz_triage_accept_lines(world, monkeypatch, capsys, data, tmp_path_factory):
    root, inbox, elsewhere = world
    inbox_paths = [str(inbox / name) for name in INBOX_FILES]
    row = st.fixed_dictionaries(
        {"path": st.sampled_from(inbox_paths) | _pathish(world), "label": st.sampled_from(["a_tl", "b_br", "..", ""])
         | _any_json()},
        optional={"probability": st.floats() | _any_json(), "unknown": _any_json(), "folder": st.sampled_from(
            [str(inbox), str(elsewhere), str(root), ""]) | _any_json()},
    )  # fmt: skip
    lines = data.draw(st.lists(row | _any_json(), min_size=1, max_size=4))
    text = "\n".join(json.dumps(r) for r in lines) + data.draw(st.sampled_from(["", "\n{not json", "\n\xff"]))
    accepted = tmp_path_factory.mktemp("accept") / "lines.jsonl"
    accepted.write_text(text, encoding="utf-8", errors="surrogateescape")
    flags = data.draw(st.sampled_from([[], ["--min-probability", "0.5"]]))
    before, outside = contents(root, inbox), files(elsewhere)
    code, _, err = run_cli(monkeypatch, capsys, "triage", "--accept", accepted, "--into", root, *flags)
    _one_error_line(code, err)
    assert files(elsewhere) == outside and contents(root, inbox) == before


@FUZZ
@given(field=st.sampled_from(["epochs", "batch_size", "learning_rate", "target_size", "model", "backbone", "weights",
                              "recipe", "seed", "head", "precision", "validation_split", "resume", "data", "name",
                              "runs_dir", "overwrite", "config", "from"]),
       value=_any_json() | st.text(max_size=30))  # fmt: skip
def test_fuzz_studio_form_values(tmp_path_factory, field, value):
    """Any value in any field: refused in one line, or a command line whose options are the form's own, each once."""
    from imgclf.studio.jobs import FORM_SETTINGS, imgclf_command, train_command

    root = tmp_path_factory.mktemp("form")
    write_class_folder(root / "shapes", {"a_tl": 2, "b_br": 2}, size=32)
    (root / "runs" / "old").mkdir(parents=True)
    try:
        argv, run = train_command(root, {"data": "shapes", "name": "r", field: value})
    except ImgclfError as exc:
        assert "\n" not in str(exc)
        return
    allowed = {"--runs-dir", "--name", "--resume", *("--" + k.replace("_", "-") for k in FORM_SETTINGS)}
    options = [a.split("=")[0] for a in argv[len(imgclf_command("train")) :] if a.startswith("-")]
    assert set(options) <= allowed and len(options) == len(set(options)), argv
    assert run.parent == (root / "runs").resolve()


def _picture(kind: str, size: tuple[int, int], mode: str) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 200, 30, 128)[: len(mode)] if mode != "P" else 3).save(out, format=kind)
    return out.getvalue()


PICTURE = st.tuples(st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"]),
                    st.tuples(st.integers(1, 60), st.integers(1, 60)), st.sampled_from(["RGB", "RGBA", "L", "P"]),
                    st.sampled_from(["whole", "cut", "junk", "empty"]))  # fmt: skip


@FUZZ
@given(pictures=st.lists(PICTURE, min_size=1, max_size=4))
def test_fuzz_capture(tmp_path_factory, pictures):
    """Any mix of pictures, cut pictures and junk: all saved as readable JPEGs, or one error and nothing written."""
    from imgclf.studio.capture import save_pictures

    root = tmp_path_factory.mktemp("capture")
    folder = write_class_folder(root / "data", {"a": 1}, size=32) / "a"
    blobs = []
    for k, (kind, size, mode, damage) in enumerate(pictures):
        if kind == "JPEG" and mode in ("RGBA", "P"):
            mode = "RGB"
        blob = _picture(kind, size, mode)
        blob = {"whole": blob, "cut": blob[: len(blob) // 2], "junk": os.urandom(len(blob)), "empty": b""}[damage]
        blobs.append((f"p{k}", blob))
    before = files(root)
    try:
        written = save_pictures(folder, blobs)
    except ImgclfError as exc:
        assert "\n" not in str(exc) and files(root) == before
        return
    assert len(written) == len(blobs) and not [p for p in folder.iterdir() if p.name.startswith(".")]
    for path in written:
        with Image.open(path) as im:
            im.load()
            assert im.format == "JPEG" and im.mode == "RGB"


@FUZZ
@given(lines=st.lists(st.fixed_dictionaries(
    {"path": st.sampled_from(["inbox/050.png", "../elsewhere/pic.png", "/etc/passwd", "inbox/\x00"]) | _any_json(),
     "label": st.sampled_from(["a_tl"]) | _any_json(), "probability": st.floats() | _any_json(),
     "margin": st.just(0.5) | _any_json(), "unknown": st.booleans() | _any_json(),
     "priority": st.just(1.0) | _any_json()},
    optional={"ood_score": st.none() | st.floats() | _any_json()}) | _any_json(), max_size=4),
    tail=st.sampled_from(["", "\n{", "\n\xff\xfe"]))  # fmt: skip
def test_fuzz_studio_inbox_lines(tmp_path_factory, lines, tail):
    """The studio's kept triage lines: each row offered has every field of its type and a picture in the project."""
    pytest.importorskip("pydantic", reason="the serve extra (pydantic) is not installed")
    from imgclf.studio.pages.inbox import read_triage, triage_file

    root = tmp_path_factory.mktemp("inbox")
    write_class_folder(root, {"inbox": 1}, size=32, start=50)
    file = triage_file(root, "r", "inbox")
    file.parent.mkdir(parents=True)
    file.write_bytes(("\n".join(json.dumps(x) for x in lines) + tail).encode("utf-8", "surrogateescape"))
    rows = read_triage(root, "r", "inbox")
    for row in rows:
        assert row["path"] == "inbox/050.png" and isinstance(row["label"], str)
        for key in ("probability", "margin", "priority"):
            assert isinstance(row[key], float) and not isinstance(row[key], bool)
        assert isinstance(row["unknown"], bool) and (row["ood_score"] is None or isinstance(row["ood_score"], float))
