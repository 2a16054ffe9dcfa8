"""The studio's inbox and Grad-CAM view, and the whole loop in a browser: suspects → relabel, undo, relabel → webcam
frames into a class → train and watch → stop and resume → compare → export and download → predict → inbox."""

import io
import os
import shutil

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from helpers import (  # noqa: E402
    SHARED,
    requires_shared,
    square_image,
    write_class_folder,
    write_pictures,  # noqa: E402
)
from helpers.studio import ORIGIN, served, snapshot, wait_job  # noqa: E402
from PIL import Image  # noqa: E402

from imgclf.studio.app import create_studio  # noqa: E402

WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def project_with_inbox(tmp_path_factory, trained_runs):
    """A project: ``shapes`` (two classes), a run ``a`` trained on the same pictures (the session's squares run),
    and ``inbox/`` with 6 unlabelled squares and 2 pictures of another kind (stripes)."""
    import shutil

    base = tmp_path_factory.mktemp("studio-loop")
    root = base / "project"
    write_class_folder(root / "shapes", {"a_tl": 20, "b_br": 20}, size=40)
    shutil.copytree(trained_runs.squares(base / "trained"), root / "runs" / "a", symlinks=True)
    (root / "inbox").mkdir()
    for k in range(6):
        square_image("tl" if k % 2 else "br", 40, 500 + k).save(root / "inbox" / f"new-{k}.png")
    write_pictures(root / "inbox", "stripes", 2, size=40)
    return root


def test_inbox_sorts_files_and_undoes_and_the_gradcam_view(project_with_inbox):
    root = project_with_inbox
    with TestClient(create_studio(root), base_url="http://127.0.0.1") as client:
        assert 'href="/inbox?folder=inbox"' in client.get("/").text
        page = client.get("/inbox").text
        assert "Sort them" in page and '<option value="inbox" selected>inbox (8)</option>' in page
        job = client.post("/api/inbox/triage", json={"run": "a", "folder": "inbox"}, headers=ORIGIN).json()
        assert job["kind"] == "triage"
        done = wait_job(client, job["id"])
        assert done["status"] == "finished", done["log"]
        page = client.get("/inbox", params={"folder": "inbox", "run": "a", "into": "shapes"}).text
        assert page.count('class="file"') == 2 and "<kbd>1</kbd> a_tl" in page and "<kbd>U</kbd>" in page
        rows = _rows(page)
        assert len(rows) == 8 and [r["priority"] for r in rows] == sorted((r["priority"] for r in rows), reverse=True)
        picture = root / rows[0]["path"]
        original = picture.read_bytes()
        moved = client.post("/api/inbox/file", json={"into": "shapes", "path": rows[0]["path"], "label": "b_br"},
                            headers=ORIGIN)  # fmt: skip
        assert moved.status_code == 200 and (root / "shapes" / "b_br" / picture.name).read_bytes() == original
        assert len(_rows(client.get("/inbox", params={"folder": "inbox", "run": "a"}).text)) == 7  # filed: gone
        twice = client.post("/api/inbox/file", json={"into": "shapes", "path": rows[1]["path"], "label": "cats"},
                            headers=ORIGIN)  # fmt: skip
        assert twice.status_code == 400 and "'cats' is not a class" in twice.json()["error"]
        assert client.post("/api/undo", json={"data": "shapes"}, headers=ORIGIN).json()["undone"]
        assert picture.read_bytes() == original and not (root / "shapes" / "b_br" / picture.name).exists()
        # Grad-CAM of a picture: a PNG at the model's input size
        square = io.BytesIO()
        square_image("br", 40, 7).save(square, format="PNG")
        heat = client.post("/api/explain/a", files={"file": ("x.png", square.getvalue(), "image/png")}, headers=ORIGIN)
        assert heat.status_code == 200 and heat.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(heat.content)) as im:
            assert im.size == (32, 32) and len(set(im.getdata())) > 8  # a picture, not a blank
        not_a_run = client.post("/api/explain/zzz", files={"file": ("x.png", square.getvalue(), "image/png")},
                                headers=ORIGIN)  # fmt: skip
        assert not_a_run.status_code == 400 and "not a trained run" in not_a_run.json()["error"]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_in_a_browser_capture_try_and_inbox(project_with_inbox):
    """Three areas clicked in headless Chromium with a fake camera: a burst of webcam frames and a dropped file into
    a class; a picture and the live webcam on the try page, with Grad-CAM; the inbox's keys 1-9 and Z."""
    import json

    from imgclf.curation.triage import triage

    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    root = project_with_inbox
    before = snapshot(root)
    sorted_file = root / ".imgclf-studio" / "inbox" / "a" / "inbox.jsonl"  # what the page's Sort job writes
    sorted_file.parent.mkdir(parents=True, exist_ok=True)
    sorted_file.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in triage(root / "runs" / "a", root / "inbox")))
    with served(root) as url, playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])  # fmt: skip
        # bypass_csp: Playwright's wait_for_function evals its predicate (the audit test checks the policy)
        page = browser.new_page(viewport={"width": 1200, "height": 900}, bypass_csp=True)
        page.goto(url + "/data/shapes?cls=b_br")
        page.click("#camera-on")
        page.wait_for_selector("#burst:not([disabled])")
        page.fill("#frames", "3")
        page.click("#burst")
        page.wait_for_selector("text=b_br · 23")  # the page reloads with the new count
        page.set_input_files("#files", str(root / "inbox" / "new-0.png"))  # a dropped or chosen file: a copy
        page.wait_for_selector("text=b_br · 24")
        made = sorted((root / "shapes" / "b_br").glob("capture-*.jpg"))
        assert len(made) == 4 and (root / "inbox" / "new-0.png").is_file()
        page.goto(url + "/try/a")
        page.check("#explain")
        page.set_input_files("#picture", str(root / "shapes" / "a_tl" / "000.png"))
        page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
        assert page.locator("#label").inner_text() in ("a_tl", "unknown (closest: a_tl)")
        page.uncheck("#explain")
        page.click("#camera-on")
        page.wait_for_function("document.getElementById('status').textContent.includes('fast copy')")  # fit made it
        page.click("#camera-off")
        page.goto(url + "/inbox?folder=inbox&run=a&into=shapes")
        shown = page.locator("#position").inner_text().split(" · ")[-1]
        page.keyboard.press("1")
        page.wait_for_selector("#status:has-text('Filed under a_tl')")
        assert (root / "shapes" / "a_tl" / shown).is_file() and not (root / "inbox" / shown).exists()
        page.keyboard.press("u")  # skip the next one: nothing moves
        page.keyboard.press("z")
        page.wait_for_selector("#status:has-text('Put back 1')")
        assert page.locator("#position").inner_text().endswith(shown)  # back at the picture put back, not the skipped
        browser.close()
    for picture in made:
        picture.unlink()
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in before} == before  # the filed picture back, every byte
    assert set(after) - set(before) <= {"shapes/.relabel/manifest.json"}


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_every_page_passes_an_accessibility_audit_and_works_by_keyboard(project_with_inbox):
    """axe-core (through Playwright) finds nothing serious or critical on any studio page; the pages run under a
    ``script-src 'self'`` Content-Security-Policy with no script refused; pictures are chosen by Tab and Space."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    axe = pytest.importorskip("axe_playwright_python.sync_playwright", reason="axe-playwright-python is not installed")
    root = project_with_inbox
    pages = ["/", "/data/shapes?cls=b_br", "/train", "/try/a",
             "/inbox?folder=inbox&run=a&into=shapes", "/inbox"]  # fmt: skip
    with served(root) as url, playwright_api.sync_playwright() as p:
        import httpx

        job = httpx.post(url + "/api/inbox/triage", json={"run": "a", "folder": "inbox"}, headers={"Origin": url})
        job = job.json()
        pages.append(f"/jobs/{job['id']}")  # a job's page, while it runs or once it has ended
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        refused = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("pageerror", lambda e: refused.append(str(e)))
        for address in pages:
            answer = page.goto(url + address)
            assert "script-src 'self'" in answer.headers["content-security-policy"], address
            found = axe.Axe().run(page).response["violations"]
            serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
                       if v["impact"] in ("serious", "critical")]  # fmt: skip
            assert not serious, (address, serious)
            assert page.locator("h1").count() == 1 and page.locator("nav").count() == 1, address
        assert not refused, refused  # every page's script ran from /static/
        page.goto(url + "/data/shapes?cls=b_br")
        for _ in range(60):  # Tab through the page to the first picture's checkbox, then tick it with Space
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.matches('.grid input')"):
                break
        else:
            raise AssertionError("Tab never reached a picture")
        page.keyboard.press("Space")
        assert page.evaluate("document.activeElement.checked")
        browser.close()
        wait_job(httpx.Client(base_url=url), job["id"])  # the triage ends before the studio stops


def _rows(page: str) -> list[dict]:
    import json

    marker = '<script type="application/json" id="page-data">'
    start = page.index(marker) + len(marker)
    return json.JSONDecoder().raw_decode(page[start:])[0]["rows"]


@pytest.mark.slow
@requires_shared(WEIGHTS)
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_the_whole_loop_in_a_browser(tmp_path):
    """What a person does in the studio, clicked in headless Chromium with a fake camera. Screenshots of every page
    go to ``$IMGCLF_SCREENSHOTS`` when set (else the test's temporary folder)."""
    import time
    import zipfile

    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")

    shots = os.environ.get("IMGCLF_SCREENSHOTS") or str(tmp_path / "screenshots")
    os.makedirs(shots, exist_ok=True)
    root = tmp_path / "project"
    write_pictures(root / "toys" / "discs", "discs", 24)
    write_pictures(root / "toys" / "stripes", "stripes", 24)
    write_pictures(root / "toys" / "discs", "stripes", 1, start=100)  # planted: a striped picture filed as a disc
    write_pictures(root / "inbox", "discs", 3, start=200)
    write_pictures(root / "inbox", "stripes", 3, start=200)
    planted = "toys/discs/stripes-100.png"

    with served(root) as url:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])  # fmt: skip
            # bypass_csp: Playwright's wait_for_function evals its predicate (the audit test checks the policy)
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True, bypass_csp=True)

            def shot(name, full_page=True):  # (a full-page picture draws the data page's sticky bar mid-page)
                page.screenshot(path=os.path.join(shots, f"{name}.png"), full_page=full_page)

            page.goto(url + "/")
            shot("01-home")
            # the data page: find the suspects, see the planted wrong label first, move it, undo, move again
            page.click("text=toys")
            page.fill("#weights", str(WEIGHTS))
            page.click("#suspects")
            page.wait_for_url("**view=suspects**", timeout=240_000)
            first = page.locator(".grid input").first
            assert first.get_attribute("value") == planted
            shot("02-suspects", full_page=False)
            page.locator(".item", has=page.locator(f"label[title='{planted}']")).locator("button.suggested").click()
            page.wait_for_selector("#status:has-text('Moved 1')")
            page.wait_for_load_state("load")
            assert (root / "toys" / "stripes" / "stripes-100.png").is_file()
            page.click("#undo")
            page.wait_for_selector("#status:has-text('Put back 1')")
            page.wait_for_load_state("load")
            assert (root / planted).is_file()
            page.locator(".item", has=page.locator(f"label[title='{planted}']")).locator("button.suggested").click()
            page.wait_for_selector("#status:has-text('Moved 1')")
            # doctor's checks as a filter
            page.goto(url + "/data/toys")
            page.click("#doctor")
            page.wait_for_selector("text=: 49 files")  # the page reloads: "last checked <time>: 49 files"
            # five webcam frames into a class (Chromium's fake camera)
            page.goto(url + "/data/toys?cls=discs")
            page.click("#camera-on")
            page.wait_for_selector("#burst:not([disabled])")
            page.fill("#frames", "5")
            page.locator("#capture").scroll_into_view_if_needed()
            shot("03-data-capture", full_page=False)
            page.click("#burst")
            page.wait_for_selector("#status:has-text('Saved 5 pictures into discs')")
            captured = sorted((root / "toys" / "discs").glob("capture-*.jpg"))
            assert len(captured) == 5 and all(Image.open(c).size == (640, 480) for c in captured)
            # train 2 epochs, then a longer run: watch its curve grow, stop it, resume it
            form = {"data": "toys", "model": "course_small", "target_size": "48 48", "batch_size": "8"}
            for name, epochs in (("first", "2"), ("second", "40")):
                page.goto(url + "/train")
                page.fill("input[name=name]", name)
                page.fill("input[name=model]", form["model"])
                page.fill("input[name=target_size]", form["target_size"])
                page.fill("input[name=batch_size]", form["batch_size"])
                page.fill("input[name=epochs]", epochs)
                if name == "first":
                    shot("04-train-form")
                page.click("button[type=submit]")
                page.wait_for_url("**/jobs/*")
                if name == "first":
                    page.wait_for_selector("#state:has-text('finished')", timeout=120_000)
                    assert page.locator("#val").get_attribute("points").count(",") == 2
                    assert page.locator("#diagnosis").is_visible() and page.locator("#message").inner_text()
                    shot("05-job-finished")
            growing = []  # the curve's points while the job runs, as the page shows them
            while len(growing) < 2 or growing[-1] < 2:
                state = page.locator("#state").inner_text()
                assert state == "running", page.locator("#log").inner_text()
                points = page.locator("#val").get_attribute("points").count(",")
                if not growing or points != growing[-1]:
                    growing.append(points)
                time.sleep(0.1)
            shot("06-job-running")
            while not (root / "runs" / "second" / "last.keras").is_file():  # a checkpoint to resume from
                time.sleep(0.1)
            page.click("#stop")
            page.wait_for_selector("#state:has-text('interrupted')", timeout=60_000)
            shot("07-job-stopped")
            page.click("#resume")
            page.wait_for_url("**/jobs/*")
            page.wait_for_selector("#state:has-text('finished')", timeout=240_000)
            assert page.locator("#val").get_attribute("points").count(",") == 40
            # compare the two runs
            page.goto(url + "/")
            shot("08-home-runs")
            page.check("input.pick[value=first]")
            page.check("input.pick[value=second]")
            page.click("#compare")
            page.wait_for_url("**/file?path=runs/compare-**")
            assert "first vs second" in page.content() or "second vs first" in page.content()  # the table's order
            shot("09-compare")
            # export one and download it
            page.goto(url + "/")
            with page.expect_download(timeout=120_000) as download:
                page.select_option("select.format[data-run=first]", "onnx")  # choosing starts nothing
                page.select_option("select.format[data-run=first]", "tflite")
                page.click("button.export[data-run=first]")
            archive = download.value.path()
            assert "first-tflite/model.tflite" in zipfile.ZipFile(archive).namelist()
            # predict a picture
            page.goto(url + "/try/first")
            page.set_input_files("#picture", str(root / "toys" / "stripes" / "stripes-000.png"))
            page.wait_for_selector("#label")
            assert "stripes" in page.locator("#label").inner_text()
            page.check("#explain")
            page.set_input_files("#picture", str(root / "toys" / "discs" / "discs-000.png"))
            page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
            shot("10-try")
            page.click("#camera-on")
            page.wait_for_function("document.getElementById('status').textContent.includes('fast copy')"
                                   " || document.getElementById('status').textContent.includes('keras')")  # fmt: skip
            page.click("#camera-off")
            # the inbox: sort with the first run, file one with a key, undo with Z
            page.goto(url + "/inbox")
            page.select_option("select[name=run]", "first")
            page.click("#sort")
            page.wait_for_selector("#picture", timeout=120_000)
            page.wait_for_function("document.getElementById('picture').naturalWidth > 0")
            shot("11-inbox")
            shown = page.locator("#position").inner_text().split(" · ")[-1]
            page.keyboard.press("2")
            page.wait_for_selector("#status:has-text('Filed under stripes')")
            assert (root / "toys" / "stripes" / shown).is_file() and not (root / "inbox" / shown).exists()
            page.keyboard.press("z")
            page.wait_for_selector("#status:has-text('Put back 1')")
            assert (root / "inbox" / shown).is_file()
            browser.close()
    assert snapshot(root)  # the project is still there, whole
