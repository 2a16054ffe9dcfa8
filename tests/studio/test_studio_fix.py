"""The studio fixes data: doctor's findings and the suspected wrong labels as filters, quarantine and restore, new
pictures from a camera or dropped files — and every write endpoint refuses cross-site, traversal and token-less
requests without changing a byte."""

import io

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from helpers import (  # noqa: E402
    SHARED,
    requires_shared,
    write_class_folder,
    write_pictures,  # noqa: E402
)
from helpers.studio import ORIGIN, snapshot, wait_job  # noqa: E402
from PIL import Image  # noqa: E402

from imgclf.studio.app import create_studio  # noqa: E402

WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    write_class_folder(root / "pets", {"a_tl": 6, "b_br": 6}, size=40)
    (root / "pets" / "a_tl" / "dup.png").write_bytes((root / "pets" / "a_tl" / "000.png").read_bytes())
    (root / "pets" / "b_br" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    write_class_folder(root / "split" / "train", {"x": 2}, size=40)
    write_class_folder(root / "split" / "validation", {"x": 2}, size=40, start=10)
    (tmp_path / "secret.png").write_bytes((root / "pets" / "a_tl" / "001.png").read_bytes())
    return root


def test_doctor_findings_filter_quarantine_and_restore(project):
    before = snapshot(project)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        assert 'data-view="doctor:' not in client.get("/data/pets").text  # never checked
        checked = client.post("/api/doctor", json={"data": "pets"}, headers=ORIGIN).json()
        assert checked["files"] == 14 and checked["problems"]["duplicate"] == 1 and checked["problems"]["corrupt"] == 1
        page = client.get("/data/pets").text
        assert 'data-view="doctor:duplicate"' in page and "exact copy of another file in the same split · 1" in page
        shown = client.get("/data/pets", params={"view": "doctor:duplicate"}).text
        assert (
            shown.count('type="checkbox"') == 1 and 'value="pets/a_tl/dup.png"' in shown and "copy of 000.png" in shown
        )
        assert client.get("/data/pets", params={"view": "doctor:nonsense"}).status_code == 400
        # quarantine the broken file: it leaves the data, the manifest says why, the filter empties
        body = {"data": "pets", "files": ["pets/b_br/broken.jpg"], "why": "doctor:corrupt"}
        moved = client.post("/api/quarantine", json=body, headers=ORIGIN)
        assert moved.status_code == 200 and moved.json()["quarantined"][0]["problems"] == ["doctor:corrupt"]
        assert not (project / "pets" / "b_br" / "broken.jpg").exists()
        assert (project / "pets" / ".quarantine" / "b_br" / "broken.jpg").is_file()
        assert "Nothing to show here" in client.get("/data/pets", params={"view": "doctor:corrupt"}).text
        # only images of that data folder can be quarantined through it
        outside = client.post("/api/quarantine", json={"data": "pets", "files": ["split/train/x/000.png"]},
                              headers=ORIGIN)  # fmt: skip
        assert outside.status_code == 400 and "is not an image of 'pets'" in outside.json()["error"]
        restored = client.post("/api/restore", json={"data": "pets"}, headers=ORIGIN).json()["restored"]
        assert restored == ["b_br/broken.jpg"]
    after = snapshot(project)
    assert {k: v for k, v in after.items() if ".quarantine" not in k} == before  # every byte back in its place


def _png(color, size=(50, 30), mode="RGB"):
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def test_capture_saves_jpegs_under_new_names_and_never_overwrites(project, monkeypatch):
    import imgclf.studio.capture as capture

    monkeypatch.setattr(capture.time, "strftime", lambda *_: "20260101-120000")  # every save the same second
    taken = project / "pets" / "a_tl" / "capture-20260101-120000-001.jpg"
    taken.write_bytes(b"an earlier picture")
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        frames = [("file", ("frame-0.jpg", _png((255, 0, 0)), "image/png")),
                  ("file", ("see-through.png", _png((0, 0, 255, 0), mode="RGBA"), "image/png"))]  # fmt: skip
        answer = client.post("/api/capture", data={"data": "pets", "cls": "a_tl"}, files=frames, headers=ORIGIN)
        assert answer.status_code == 200, answer.text
        saved = answer.json()["saved"]
        assert saved == ["pets/a_tl/capture-20260101-120000-002.jpg", "pets/a_tl/capture-20260101-120000-003.jpg"]
        assert taken.read_bytes() == b"an earlier picture"
        with Image.open(project / saved[0]) as first, Image.open(project / saved[1]) as second:
            assert first.format == "JPEG" and first.size == (50, 30) and first.getpixel((25, 15))[0] > 240
            assert second.mode == "RGB" and min(second.getpixel((25, 15))) > 240  # transparency on white
        # a new class, made on request only, in a split layout's chosen split
        new = client.post("/api/capture", data={"data": "split", "split": "train", "cls": "y z", "create": "true"},
                          files=frames[:1], headers=ORIGIN)  # fmt: skip
        assert new.status_code == 200 and new.json()["saved"][0].startswith("split/train/y z/capture-")
        before = snapshot(project)
        for form, why in (({"data": "pets", "cls": "new"}, "create it first"),
                          ({"data": "pets", "cls": "../../x", "create": "true"}, "class must be a folder name"),
                          ({"data": "pets", "cls": ".hidden", "create": "true"}, "class must be a folder name"),
                          ({"data": "split", "cls": "x"}, "split must be one of ['train', 'validation']"),
                          ({"data": "pets", "split": "train", "cls": "a_tl"}, "split must be empty"),
                          ({"data": "..", "cls": "a_tl"}, "without '..'")):  # fmt: skip
            refused = client.post("/api/capture", data=form, files=frames[:1], headers=ORIGIN)
            assert refused.status_code == 400 and why in refused.json()["error"], (form, refused.text)
        junk = [("file", ("ok.png", _png((1, 2, 3)), "image/png")), ("file", ("junk.jpg", b"<html>", "image/jpeg"))]
        refused = client.post("/api/capture", data={"data": "pets", "cls": "b_br"}, files=junk, headers=ORIGIN)
        assert refused.status_code == 400 and "'junk.jpg' is not an image" in refused.json()["error"]
        assert snapshot(project) == before  # nothing written by a refused request, not even the good picture


@requires_shared(WEIGHTS)
def test_suspects_job_flags_a_planted_wrong_label_and_the_page_moves_it(tmp_path):
    root = tmp_path / "project"
    write_pictures(root / "toys" / "discs", "discs", 24)
    write_pictures(root / "toys" / "stripes", "stripes", 24)
    planted = root / "toys" / "discs" / "stripes-100.png"
    write_pictures(root / "toys" / "discs", "stripes", 1, start=100)  # a striped picture filed as a disc
    with TestClient(create_studio(root), base_url="http://127.0.0.1") as client:
        job = client.post("/api/suspects", json={"data": "toys", "weights": str(WEIGHTS)}, headers=ORIGIN).json()
        assert job["kind"] == "suspects" and job["status"] in ("queued", "running")
        done = wait_job(client, job["id"])
        assert done["status"] == "finished", done["log"]
        page = client.get("/data/toys").text
        assert 'data-view="suspects"' in page
        shown = client.get("/data/toys", params={"view": "suspects"}).text
        first = shown.index('type="checkbox" value="') + len('type="checkbox" value="')
        assert shown[first:].startswith("toys/discs/stripes-100.png")  # the most suspect first
        assert 'data-to="stripes"' in shown and "discs → stripes" in shown
        moved = client.post("/api/relabel", json={"data": "toys", "files": ["toys/discs/stripes-100.png"],
                                                  "to": "stripes"}, headers=ORIGIN)  # fmt: skip
        assert moved.status_code == 200 and not planted.exists()
        assert "toys/discs/stripes-100.png" not in client.get("/data/toys", params={"view": "suspects"}).text


#: One small picture, as a form's file field.
PICTURE = [("file", ("f.png", _png((9, 9, 9)), "image/png"))]

#: Every endpoint that writes (or starts work), with a body that would be accepted from the page itself.
WRITES = [
    ("/api/relabel", {"json": {"data": "pets", "files": ["pets/a_tl/000.png"], "to": "b_br"}}),
    ("/api/undo", {"json": {"data": "pets"}}),
    ("/api/quarantine", {"json": {"data": "pets", "files": ["pets/a_tl/000.png"]}}),
    ("/api/restore", {"json": {"data": "pets"}}),
    ("/api/doctor", {"json": {"data": "pets"}}),
    ("/api/suspects", {"json": {"data": "pets"}}),
    ("/api/capture", {"data": {"data": "pets", "cls": "a_tl"}, "files": PICTURE}),
    ("/api/train", {"json": {"data": "pets", "name": "r", "epochs": 1}}),
    ("/api/jobs/1/stop", {"json": {}}),
    ("/api/export", {"json": {"run": "r", "format": "tflite"}}),
    ("/api/compare", {"json": {"runs": ["r", "s"]}}),
    ("/api/inbox/triage", {"json": {"run": "r", "folder": "inbox"}}),
    ("/api/inbox/file", {"json": {"path": "inbox/000.png", "label": "a_tl", "into": "pets"}}),
    ("/api/predict/r", {"files": PICTURE}),
    ("/api/explain/r", {"files": PICTURE}),
]  # fmt: skip


@pytest.mark.parametrize("url,request_body", WRITES, ids=[w[0] for w in WRITES])
def test_every_write_refuses_cross_site_and_token_less_requests(project, url, request_body):
    before = snapshot(project)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:9999"}):
            answer = client.post(url, headers=headers, **request_body)
            assert answer.status_code == 403 and "refused" in answer.json()["error"], (headers, answer.text)
    with TestClient(create_studio(project, host="0.0.0.0", token="s3cret"), base_url="http://10.0.0.2:80") as client:
        answer = client.post(url, headers={"Origin": "http://10.0.0.2:80"}, **request_body)
        assert answer.status_code == 403
    assert snapshot(project) == before


#: Writes naming a path that leads out of the project, each way a path can be named.
TRAVERSALS = [
    ("/api/relabel", {"json": {"data": "pets", "files": ["../secret.png"], "to": "b_br"}}),
    ("/api/relabel", {"json": {"data": "..", "files": ["pets/a_tl/000.png"], "to": "b_br"}}),
    ("/api/undo", {"json": {"data": "/tmp"}}),
    ("/api/relabel", {"json": {"data": ".", "files": ["pets/a_tl/000.png"], "to": "split"}}),  # the project itself
    ("/api/quarantine", {"json": {"data": "", "files": ["pets/a_tl/000.png"]}}),
    ("/api/inbox/file", {"json": {"path": "pets/a_tl/000.png", "label": "pets", "into": "."}}),
    ("/api/quarantine", {"json": {"data": "pets", "files": ["pets/../../secret.png"]}}),
    ("/api/quarantine", {"json": {"data": "..", "files": ["secret.png"]}}),
    ("/api/restore", {"json": {"data": "../"}}),
    ("/api/doctor", {"json": {"data": ".."}}),
    ("/api/suspects", {"json": {"data": "/etc"}}),
    ("/api/capture", {"data": {"data": "pets/../..", "cls": "x", "create": "true"}, "files": PICTURE}),
    ("/api/capture", {"data": {"data": "pets", "cls": "../x", "create": "true"}, "files": PICTURE}),
    ("/api/train", {"json": {"data": "../", "name": "r"}}),
    ("/api/train", {"json": {"resume": "../../x"}}),
    ("/api/export", {"json": {"run": "../../pets", "format": "tflite"}}),
    ("/api/compare", {"json": {"runs": ["../..", "../../pets"]}}),
    ("/api/inbox/triage", {"json": {"run": "../../x", "folder": "pets"}}),
    ("/api/inbox/file", {"json": {"path": "../secret.png", "label": "a_tl", "into": "pets"}}),
    ("/api/inbox/file", {"json": {"path": "pets/a_tl/000.png", "label": "b_br", "into": "pets"}}),
    ("/api/predict/..%2F..%2Fx", {"files": PICTURE}),
    ("/api/explain/..%2F..%2Fx", {"files": PICTURE}),
]  # fmt: skip


@pytest.mark.parametrize("url,request_body", TRAVERSALS, ids=[f"{w[0]}-{k}" for k, w in enumerate(TRAVERSALS)])
def test_every_write_refuses_paths_outside_the_project(project, url, request_body):
    before = snapshot(project)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        answer = client.post(url, headers=ORIGIN, **request_body)
        assert answer.status_code in (400, 404) and "error" in answer.json(), answer.text
    assert snapshot(project) == before and (project.parent / "secret.png").is_file()
