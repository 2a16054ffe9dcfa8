"""Where the studio reads and writes: pictures are captured into a data folder's classes only (never ``runs/``, a
run, the studio's own folder, an inbox or through a link), decoded one at a time within a pixel budget under the
data folder's lock; a folder that links out of the project is listed as not available, never a 400; an inbox is
never also a data folder."""

import io
import os
from contextlib import contextmanager

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from helpers import write_class_folder  # noqa: E402
from helpers.studio import ORIGIN, snapshot  # noqa: E402
from PIL import Image  # noqa: E402

from imgclf.studio import capture  # noqa: E402
from imgclf.studio.app import create_studio  # noqa: E402
from imgclf.studio.project import data_folders, inbox_folders, unavailable_folders  # noqa: E402


def _jpeg(color=(200, 10, 10), size=(48, 32)):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    write_class_folder(root / "pets", {"cat": 4, "dog": 4}, size=40)
    write_class_folder(root / "runs" / "base", {"x": 1}, size=40)
    (root / "runs" / "base" / "config.yaml").write_text("model: course_small\n")
    (root / "runs" / "base" / "model.keras").write_bytes(b"a model")
    (root / ".imgclf-studio" / "thumbs").mkdir(parents=True)
    inbox = write_class_folder(root / "inbox", {"stray": 1}, size=40)  # loose pictures and one subfolder
    for k in range(5):
        (inbox / f"new-{k}.jpg").write_bytes(_jpeg())
    outside = write_class_folder(tmp_path / "elsewhere", {"cat": 2, "dog": 2}, size=40)
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "pets" / "escape").symlink_to(outside / "cat", target_is_directory=True)
    return root


def test_an_inbox_is_not_a_data_folder_and_a_link_out_is_listed_not_read(project):
    assert [f.name for f in data_folders(project)] == ["pets"]
    assert inbox_folders(project) == [("inbox", 5)]
    assert unavailable_folders(project) == ["linked"]
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        for page in ("/", "/train", "/inbox"):
            answer = client.get(page)
            assert answer.status_code == 200, (page, answer.text)
            assert "linked" in answer.text and "not available" in answer.text.lower(), page
        home = client.get("/").text
        assert 'href="/data/inbox"' not in home and 'href="/inbox?folder=inbox"' in home


@pytest.mark.parametrize(
    "form, why",
    [
        ({"data": "runs", "cls": "new", "create": "true"}, "'runs' is not a data folder"),
        ({"data": "runs/base", "cls": "x"}, "is not a data folder"),
        ({"data": ".imgclf-studio", "cls": "thumbs"}, "is not a data folder"),
        ({"data": ".imgclf-studio", "cls": "new", "create": "true"}, "is not a data folder"),
        ({"data": "inbox", "cls": "stray"}, "'inbox' is an inbox"),
        ({"data": "inbox", "cls": "new", "create": "true"}, "'inbox' is an inbox"),
        ({"data": "pets/cat", "cls": "x", "create": "true"}, "is not a data folder"),
        ({"data": "linked", "cls": "cat"}, "outside the project"),
        ({"data": "pets", "cls": "escape"}, "is a link"),
        ({"data": "newdata", "cls": "x", "create": "true"}, "not a data folder"),
    ],
)
def test_capture_writes_into_a_data_folders_classes_only(project, form, why):
    before = snapshot(project.parent)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/capture", data=form, files=[("file", ("f.jpg", _jpeg(), "image/jpeg"))],
                             headers=ORIGIN)  # fmt: skip
    assert answer.status_code == 400 and why in answer.json()["error"], answer.text
    assert snapshot(project.parent) == before


def test_capture_into_a_new_dataset_and_an_empty_class(project):
    (project / "birds").mkdir()
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/capture", data={"data": "birds", "cls": "owl", "create": "true"},
                             files=[("file", ("f.jpg", _jpeg(), "image/jpeg"))], headers=ORIGIN)  # fmt: skip
    assert answer.status_code == 200 and answer.json()["saved"][0].startswith("birds/owl/capture-")


def test_capture_decodes_one_picture_at_a_time_under_the_lock_and_bounds_a_request(project, monkeypatch):
    events = []
    decode, move = capture._upright_rgb, capture.move_file

    @contextmanager
    def lock(data):
        events.append(("lock", os.path.basename(data)))
        yield
        events.append(("unlock",))

    monkeypatch.setattr(capture, "locked", lock)
    monkeypatch.setattr(capture, "_upright_rgb", lambda n, b: (events.append(("decode", n)), decode(n, b))[1])
    monkeypatch.setattr(capture, "move_file", lambda s, t: (events.append(("write",)), move(s, t))[1])
    pictures = [(f"p{k}.jpg", _jpeg((k * 40, 0, 0))) for k in range(3)]
    written = capture.save_pictures(project / "pets" / "cat", pictures)
    assert len(written) == 3 and all(p.is_file() for p in written)
    assert events == [("lock", "pets"), ("decode", "p0.jpg"), ("write",), ("decode", "p1.jpg"), ("write",),
                      ("decode", "p2.jpg"), ("write",), ("unlock",)]  # fmt: skip
    assert not [p for p in (project / "pets" / "cat").iterdir() if p.name.startswith(".")]  # no partial left

    # the whole request is bounded before anything is decoded
    events.clear()
    monkeypatch.setattr(capture, "MAX_REQUEST_PIXELS", 48 * 32 * 2)
    before = snapshot(project)
    with pytest.raises(Exception, match=r"3 pictures of 4608 pixels in all: at most 3072"):
        capture.save_pictures(project / "pets" / "cat", pictures)
    assert events == [] and snapshot(project) == before


def test_a_picture_that_fails_to_decode_after_its_header_leaves_nothing(project):
    good = _jpeg()
    truncated = good[: len(good) // 2]  # a JPEG header and half its data: readable size, undecodable body
    before = snapshot(project)
    with pytest.raises(Exception, match="'cut.jpg' is not an image Pillow can read"):
        capture.save_pictures(project / "pets" / "dog", [("a.jpg", good), ("b.jpg", good), ("cut.jpg", truncated)])
    assert snapshot(project) == before


def test_the_inbox_page_reads_the_triage_of_a_finished_run_only(project, tmp_path):
    (tmp_path / "x" / "inbox").mkdir(parents=True)
    (tmp_path / "x" / "inbox" / "inbox.jsonl").write_text('{"path": "/etc/passwd"}\n')
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        for run in ("../../../x", "base/../../../x", "nope"):
            answer = client.get("/inbox", params={"folder": "inbox", "run": run})
            assert answer.status_code == 400 and "is not a finished run" in answer.json()["error"], answer.text
