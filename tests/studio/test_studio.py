"""imgclf studio (issue 28, first part): the data page, thumbnails, relabel and undo through the CLI's functions, and
the guards — no cross-site write, no path outside the project, a token off loopback; a refused request changes
nothing on disk."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from helpers import write_class_folder  # noqa: E402
from helpers.studio import ORIGIN, served, snapshot, wait_job  # noqa: E402

from imgclf.studio.app import create_studio  # noqa: E402
from imgclf.studio.project import class_images, data_folders, inside  # noqa: E402


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    write_class_folder(root / "shapes" / "train", {"a_tl": 70, "b_br": 5}, size=40)
    write_class_folder(root / "shapes" / "validation", {"a_tl": 3, "b_br": 3}, size=40, start=100)
    write_class_folder(root / "flat", {"x": 2, "y": 2}, size=40)
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not data")
    (tmp_path / "secret.png").write_bytes((root / "flat" / "x" / "000.png").read_bytes())
    return root


def test_project_listing_and_paths(project):
    folders = {f.name: f for f in data_folders(project)}
    assert set(folders) == {"shapes", "flat"}
    assert folders["shapes"].splits == {"train": {"a_tl": 70, "b_br": 5}, "validation": {"a_tl": 3, "b_br": 3}}
    assert folders["flat"].splits == {"": {"x": 2, "y": 2}}
    page, total = class_images(project, "shapes", "train", "a_tl", page=2, per_page=60)
    assert total == 70 and len(page) == 10 and page[0] == "shapes/train/a_tl/060.png"
    for bad in ("../secret.png", "/etc/passwd", "shapes/../../secret.png", "C:/x"):
        with pytest.raises(Exception, match="project"):
            inside(project, bad)
    (project / "link").symlink_to(project.parent)
    with pytest.raises(Exception, match="outside the project"):
        inside(project, "link/secret.png")


def test_pages_and_cached_thumbnails(project):
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        home = client.get("/").text
        assert 'href="/data/shapes"' in home and "a_tl, b_br" in home and "http" not in home.split("<body>")[1]
        page = client.get("/data/shapes", params={"split": "train", "cls": "a_tl"}).text
        assert page.count('type="checkbox"') == 60 and "page 1 of 2" in page and "next" in page
        first = client.get("/thumb", params={"path": "shapes/train/a_tl/000.png"})
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        assert "max-age" in first.headers["cache-control"]
        assert len(list((project / ".imgclf-studio" / "thumbs").rglob("*.jpg"))) == 1  # made once, kept
        again = client.get("/thumb", params={"path": "shapes/train/a_tl/000.png"})
        assert again.content == first.content
        for bad in ("../secret.png", "%2e%2e/secret.png", "/etc/hostname", "shapes/../../secret.png"):
            answer = client.get("/thumb", params={"path": bad})
            assert answer.status_code in (400, 404) and "error" in answer.json(), bad
        raw = client.get("/thumb?path=..%2Fsecret.png")
        assert raw.status_code == 400
        assert client.get("/image", params={"path": "notes/readme.txt"}).status_code == 404


def test_relabel_and_undo_through_the_manifest(project):
    before = snapshot(project)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        clash = {"data": "shapes", "files": ["shapes/train/a_tl/000.png"], "to": "b_br"}  # b_br has a 000.png
        refused = client.post("/api/relabel", json=clash, headers=ORIGIN)
        assert refused.status_code == 400 and "never overwrites" in refused.json()["error"]
        assert snapshot(project) == before
        files = ["shapes/train/a_tl/060.png", "shapes/train/a_tl/061.png"]
        answer = client.post("/api/relabel", json={"data": "shapes", "files": files, "to": "b_br"}, headers=ORIGIN)
        assert answer.status_code == 200 and len(answer.json()["moved"]) == 2
        moved = snapshot(project)
        assert moved["shapes/train/b_br/060.png"] == before["shapes/train/a_tl/060.png"]
        assert "shapes/train/a_tl/060.png" not in moved and len(moved) == len(before) + 1  # + the manifest
        page = client.get("/data/shapes", params={"split": "train", "cls": "b_br"}).text
        assert "b_br · 7" in page and "060.png" in page
        assert client.post("/api/undo", json={"data": "shapes"}, headers=ORIGIN).status_code == 200
    after = snapshot(project)
    assert {k: v for k, v in after.items() if k in before} == before  # every byte back in its place


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://evil.example"}, {"Origin": "http://127.0.0.1:9999"},
                                     {"Origin": "null"}])  # fmt: skip
def test_cross_origin_and_origin_less_writes_are_refused(project, headers):
    before = snapshot(project)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        body = {"data": "shapes", "files": ["shapes/train/a_tl/060.png"], "to": "b_br"}
        answer = client.post("/api/relabel", json=body, headers=headers)
        assert answer.status_code == 403 and "refused" in answer.json()["error"]
        assert client.post("/api/undo", json={"data": "shapes"}, headers=headers).status_code == 403
    assert snapshot(project) == before


def test_traversal_in_writes_is_refused_and_changes_nothing(project):
    before = snapshot(project)
    with TestClient(create_studio(project), base_url="http://127.0.0.1") as client:
        for body in ({"data": "..", "files": ["secret.png"], "to": "x"},
                     {"data": "shapes", "files": ["../secret.png"], "to": "b_br"},
                     {"data": "shapes", "files": ["/etc/hostname"], "to": "b_br"}):  # fmt: skip
            answer = client.post("/api/relabel", json=body, headers=ORIGIN)
            assert answer.status_code == 400 and "error" in answer.json(), body
    assert snapshot(project) == before and (project.parent / "secret.png").is_file()


def test_a_token_is_required_off_loopback(project):
    app = create_studio(project, host="0.0.0.0", token="s3cret")
    with TestClient(app, base_url="http://192.168.1.5:8000") as client:
        assert client.get("/").status_code == 403
        assert client.get("/", params={"token": "wrong"}).status_code == 403
        assert client.get("/", params={"token": "s3cret"}).status_code == 200  # and sets the cookie
        assert client.get("/data/flat").status_code == 200
        origin = {"Origin": "http://192.168.1.5:8000"}
        client.cookies.clear()
        write_class_folder(project / "flat", {"x": 4}, size=40, start=10)  # x/010.png..: names y lacks
        body = {"data": "flat", "files": ["flat/x/010.png"], "to": "y"}
        assert client.post("/api/relabel", json=body, headers=origin).status_code == 403
        ok = client.post("/api/relabel", json=body, headers={**origin, "X-Imgclf-Token": "s3cret"})
        assert ok.status_code == 200


CHROMIUM = __import__("shutil").which("chromium") or __import__("shutil").which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_in_a_browser_select_move_and_undo(project, tmp_path):
    """The data page in headless Chromium (Playwright): pick two pictures, move them to the other class, see the
    counts change, undo; then every byte is back where it was."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    before = snapshot(project)
    with served(project) as url:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            # bypass_csp: Playwright's wait_for_function evals its predicate (the audit test checks the policy)
            page = browser.new_page(viewport={"width": 1100, "height": 800}, bypass_csp=True)
            page.goto(url + "/")
            page.click("text=shapes")
            page.click("text=a_tl · 70")
            page.wait_for_function("[...document.querySelectorAll('.grid img')].slice(0, 3).every(i => i.complete "
                                   "&& i.naturalWidth > 0)")  # fmt: skip
            page.screenshot(path=str(tmp_path / "studio-data.png"))
            assert page.locator(".grid img").count() == 60  # page 1 of 2
            page.click("text=next →")  # page 2 holds 060-069
            page.click("label[title='shapes/train/a_tl/060.png']")
            page.click("label[title='shapes/train/a_tl/061.png']")
            page.select_option("#to", "b_br")
            page.click("#move")
            page.wait_for_selector("text=b_br · 7")  # the page reloads with the new counts
            assert (project / "shapes" / "train" / "b_br" / "061.png").is_file()
            page.click("#undo")
            page.wait_for_selector("text=b_br · 5")
            browser.close()
    assert {k: v for k, v in snapshot(project).items() if k in before} == before


@pytest.fixture(scope="module")
def project_with_runs(tmp_path_factory):
    """A project with two real runs of the same data (3 and 1 epochs), finished by ``fit`` (report, fast copy); the
    second's TensorFlow-free copy removed, so it answers through Keras."""
    import shutil

    from imgclf import ImageClassifier

    root = tmp_path_factory.mktemp("studio") / "project"
    write_class_folder(root / "shapes", {"a_tl": 20, "b_br": 20}, size=40)
    for name, epochs in (("a", 3), ("b", 1)):
        ImageClassifier(model="course_small", target_size=(32, 32), epochs=epochs, batch_size=8).fit(
            root / "shapes", run_dir=root / "runs" / name, verbose=0)  # fmt: skip
    shutil.rmtree(root / "runs" / "b" / "fast")
    return root


def test_runs_report_compare_and_try(project_with_runs):
    root = project_with_runs
    picture = (root / "shapes" / "b_br" / "003.png").read_bytes()
    with TestClient(create_studio(root), base_url="http://127.0.0.1") as client:
        home = client.get("/").text
        assert 'href="/runs/a/report"' in home and 'href="/try/b"' in home and home.count('class="pick"') == 2
        assert "<th>recipe</th>" in home and "<td>shapes</td>" in home  # the columns of imgclf runs
        report = client.get("/runs/a/report")
        assert report.status_code == 200 and "<h2>Fast copy</h2>" in report.text
        assert client.get("/runs/..%2F..%2Fsecret/report").status_code in (400, 404)
        made = client.post("/api/compare", json={"runs": ["a", "b"]}, headers=ORIGIN)
        assert made.status_code == 200 and made.json()["page"].startswith("/file?path=runs/compare-a-vs-b")
        page = client.get(made.json()["page"])
        assert page.status_code == 200 and "a vs b" in page.text and "resolved.epochs" in page.text
        assert client.get("/file", params={"path": "shapes/a_tl/000.png"}).status_code == 404  # pages under runs/ only
        assert client.post("/api/compare", json={"runs": ["a"]}, headers=ORIGIN).status_code == 400
        assert "Try a" in client.get("/try/a").text
        for run, engine in (("a", "fast copy"), ("b", "keras")):
            answer = client.post(f"/api/predict/{run}", files={"file": ("x.png", picture, "image/png")}, headers=ORIGIN)
            assert answer.status_code == 200 and answer.json()["engine"] == engine, answer.text
            assert answer.json()["label"] == "b_br" and set(answer.json()["probabilities"]) == {"a_tl", "b_br"}
        bad = client.post("/api/predict/a", files={"file": ("x.png", b"not an image", "image/png")}, headers=ORIGIN)
        assert bad.status_code == 400 and "error" in bad.json()
        exported = client.post("/api/export", json={"run": "b", "format": "tflite"}, headers=ORIGIN)
        assert exported.status_code == 200 and exported.json()["parity"]["top1_agreement"] == 1.0
        archive = client.get(exported.json()["download"])
        assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
        import io
        import zipfile

        names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        assert {"b-tflite/model.tflite", "b-tflite/signature.json", "b-tflite/export.json"} <= set(names)
        assert client.get("/download", params={"path": "shapes"}).status_code == 404  # export folders only
        assert client.post("/api/export", json={"run": "b", "format": "tflite"}).status_code == 403  # no Origin


def test_train_a_short_run_and_refuse_bad_forms(tmp_path):
    """A training started from the studio runs `imgclf train` in the background and its history grows; a bad setting
    fails the job with the command's own one-line error; forms that leave the project or set other settings are
    refused before anything starts. (Stop, the queue and resume: the slow test below, `pytest -m slow`.)"""
    root = tmp_path / "project"
    write_class_folder(root / "shapes", {"a_tl": 20, "b_br": 20}, size=40)
    form = {"data": "shapes", "model": "course_small", "target_size": "32 32", "batch_size": 8}
    with TestClient(create_studio(root), base_url="http://127.0.0.1") as client:
        assert "Start training" in client.get("/train").text
        for body, message in (({**form, "name": "../up"}, "name must be"), ({**form, "data": ".."}, "project"),
                              ({**form, "name": "y", "distribute": "mirrored"}, "distribute: not a field"),
                              ({"resume": "nothing"}, "no run")):  # fmt: skip
            answer = client.post("/api/train", json=body, headers=ORIGIN)
            status = 422 if "not a field" in message else 400  # a field no form has: the body's shape is wrong
            assert answer.status_code == status and message in answer.json()["error"], body
        bad = client.post("/api/train", json={**form, "name": "x", "epochs": 0}, headers=ORIGIN).json()
        failed = wait_job(client, bad["id"], lambda j: j["status"] not in ("queued", "running"))
        assert failed["status"] == "failed" and any("epochs must be" in line for line in failed["log"])
        short = client.post("/api/train", json={**form, "name": "short", "epochs": 2}, headers=ORIGIN).json()
        done = wait_job(client, short["id"], lambda j: j["status"] not in ("queued", "running"))
        assert done["status"] == "finished" and [r["epoch"] for r in done["history"]] == [1, 2]
        assert done["diagnosis"]["verdict"] in (
            "underfitting",
            "still_improving",
            "good_fit",
            "overfitting",
            "unstable",
        )
        assert (root / "runs" / "short" / "model.keras").is_file() and "Training short" in client.get(
            f"/jobs/{short['id']}"
        ).text
        events = client.get(f"/api/jobs/{short['id']}/events")  # a finished job: one event, then the stream ends
        assert events.text.startswith("data: ") and '"status": "finished"' in events.text


@pytest.mark.slow
def test_train_queue_stop_and_resume(tmp_path):
    """Two trainings: the second waits for the first; Stop interrupts the first (resumable, as Ctrl-C does), the
    second then runs; Resume finishes the first."""
    import json

    root = tmp_path / "project"
    write_class_folder(root / "shapes", {"a_tl": 20, "b_br": 20}, size=40)
    form = {"data": "shapes", "model": "course_small", "target_size": "32 32", "batch_size": 8}
    with TestClient(create_studio(root), base_url="http://127.0.0.1") as client:
        assert "Start training" in client.get("/train").text
        first = client.post("/api/train", json={**form, "name": "long", "epochs": 25}, headers=ORIGIN).json()
        second = client.post("/api/train", json={**form, "name": "short", "epochs": 2}, headers=ORIGIN).json()
        assert first["status"] == "running" and second["status"] == "queued"
        last = root / "runs" / "long" / "last.keras"  # a checkpoint to resume from (else Stop leaves no run)
        wait_job(client, first["id"], lambda j: len(j["history"]) >= 1 and last.is_file())  # the curve grows
        assert "Training long" in client.get(f"/jobs/{first['id']}").text
        client.post(f"/api/jobs/{first['id']}/stop", headers=ORIGIN)
        stopped = wait_job(client, first["id"], lambda j: j["status"] not in ("queued", "running"))
        assert stopped["status"] == "interrupted" and stopped["returncode"] == 130, stopped["log"][-12:]
        state = json.loads((root / "runs" / "long" / "state.json").read_text())
        assert (
            state["status"] == "interrupted" and state["epochs_completed"] < 25
        )  # (the epoch in progress may be mid-save)
        done = wait_job(client, second["id"], lambda j: j["status"] not in ("queued", "running"))
        assert done["status"] == "finished" and [r["epoch"] for r in done["history"]] == [1, 2]
        again = client.post("/api/train", json={"resume": "long"}, headers=ORIGIN).json()
        finished = wait_job(client, again["id"], lambda j: j["status"] not in ("queued", "running"))
        assert finished["status"] == "finished" and [r["epoch"] for r in finished["history"]] == list(range(1, 26))
        events = client.get(f"/api/jobs/{again['id']}/events")  # a finished job: one event, then the stream ends
        assert events.text.startswith("data: ") and '"status": "finished"' in events.text
