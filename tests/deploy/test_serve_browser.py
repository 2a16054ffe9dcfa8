"""The web page in a real headless Chromium (Debian's `chromium`, driven by Playwright): upload a cat, see it."""

from __future__ import annotations

import shutil
import threading

import pytest
from helpers import CATS_AND_DOGS, free_port, requires_shared, wait_until

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from imgclf import ImageClassifier
    from imgclf.deploy.serve.app import create_app
    from imgclf.predict.predictor import Predictor

    root = tmp_path_factory.mktemp("web")
    for split, count in (("train", 16), ("validation", 4)):  # a few of the course's photos: a real, small model
        for label in ("cats", "dogs"):
            (root / "data" / split / label).mkdir(parents=True)
            for src in sorted((CATS_AND_DOGS / split / label).glob("*.jpg"))[:count]:
                shutil.copy(src, root / "data" / split / label / src.name)
    ImageClassifier(model="course_small", target_size=(64, 64), epochs=2, batch_size=8).fit(
        root / "data", run_dir=root / "run", verbose=0
    )
    port = free_port()
    config = uvicorn.Config(create_app(Predictor.from_run(root / "run"), name="cats-vs-dogs"), host="127.0.0.1",
                            port=port, log_level="warning")  # fmt: skip
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_until(lambda: srv.started, 30, "the server starting")
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(timeout=10)


def _an_image_the_api_calls_unknown(server: str, tmp_path):
    """Of a flat grey picture, colour noise and stripes, the first ``POST /predict`` answers unknown for (this
    tiny model's threshold comes from 8 validation images, so which one is not fixed)."""
    import httpx
    import numpy as np
    from PIL import Image

    stripes = np.zeros((150, 150, 3), np.uint8)
    stripes[:, ::6] = (255, 0, 255)
    noise = np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    candidates = [Image.new("RGB", (150, 150), (128, 128, 128)), Image.fromarray(noise), Image.fromarray(stripes)]
    for i, im in enumerate(candidates):
        path = tmp_path / f"odd{i}.png"
        im.save(path)
        answer = httpx.post(server + "predict", files={"file": (path.name, path.read_bytes(), "image/png")}, timeout=30)
        if answer.json()["predictions"][0]["unknown"]:
            return path
    raise AssertionError("none of the odd pictures was called unknown")


@requires_shared(CATS_AND_DOGS)
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_upload_a_cat_and_see_label_bars_and_heatmap(server, tmp_path):
    cat = sorted((CATS_AND_DOGS / "validation" / "cats").glob("*.jpg"))[0]
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        refused = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        answer = page.goto(server)
        assert "script-src 'self'" in answer.headers["content-security-policy"]  # no inline script may run
        assert "<script>" not in page.content()  # the page's script is /static/serve.js
        assert "cats, dogs" in page.text_content("body")
        page.set_input_files("#picker", str(cat))
        page.wait_for_selector(".result .label", timeout=30_000)
        label = page.text_content(".result .label")
        assert label.split(" ")[0] in ("cats", "dogs") and "%" in label
        assert page.locator(".result .bar").count() == 2
        widths = page.eval_on_selector_all(".result .fill", "els => els.map(e => parseFloat(e.style.width))")
        assert sum(widths) == pytest.approx(100, abs=0.5)  # the two bars are the two probabilities
        page.wait_for_function("() => { const h = document.querySelector('.result img.heatmap');"
                               " return h && h.complete && h.naturalWidth > 0; }", timeout=30_000)  # fmt: skip
        odd = _an_image_the_api_calls_unknown(server, tmp_path)
        page.set_input_files("#picker", str(odd))
        page.wait_for_selector(".result .label.unknown", timeout=30_000)  # the newest result comes first
        assert page.text_content(".result .label.unknown") == "Not sure: this doesn't look like any class I know"
        assert not refused, refused
        shot = tmp_path / "serve.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
