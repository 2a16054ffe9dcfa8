"""The web app and JSON API: predictions, Grad-CAM, and a clear 4xx for every kind of bad upload."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's TestClient) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from imgclf import ImageClassifier  # noqa: E402
from imgclf.inference import Predictor  # noqa: E402
from imgclf.serve.app import create_app  # noqa: E402

from conftest import square_image, squares_run  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return squares_run(tmp_path_factory.mktemp("serve"), epochs=4, seed=1)


@pytest.fixture(scope="module")
def client(run):
    app = create_app(Predictor.from_run(run), name="squares")  # the default 10 MB upload limit
    with TestClient(app) as c:  # runs the lifespan: the micro-batching loop
        yield c


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def huge_png_header(side: int = 30000) -> bytes:
    """A PNG that declares side x side pixels (a decompression bomb's header) with a tiny body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )


def test_predict_one_and_several(client, run):
    files = [("file", ("tl.png", png_bytes(square_image("tl", 40, seed=900)), "image/png")),
             ("file", ("br.png", png_bytes(square_image("br", 40, seed=901)), "image/png"))]  # fmt: skip
    answer = client.post("/predict", files=files)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "squares" and body["ms"] > 0
    assert [p["filename"] for p in body["predictions"]] == ["tl.png", "br.png"]
    expected = ImageClassifier.load(run)
    for p, img in zip(body["predictions"], (square_image("tl", 40, seed=900), square_image("br", 40, seed=901))):
        want = expected.predict_proba(np.asarray(img)[None])[0]  # the API answers what the library predicts
        assert p["label"] == ["a_tl", "b_br"][int(want.argmax())]
        assert p["probabilities"]["b_br"] == pytest.approx(float(want[1]), abs=1e-4)
    # The same "unknown" answer as the library and the CLI: a flat grey picture is unlike any training image.
    grey = Image.new("RGB", (40, 40), (128, 128, 128))
    answer = client.post("/predict", files=[("file", ("grey.png", png_bytes(grey), "image/png"))]).json()
    p = answer["predictions"][0]
    assert p["unknown"] is True and p["ood_score"] > 0
    assert list(expected.predict(np.asarray(grey)[None], unknown_label="unknown")) == ["unknown"]
    assert all(isinstance(q["unknown"], bool) and q["ood_score"] >= 0 for q in body["predictions"])


def test_explain_model_health_page_and_docs(client):
    answer = client.post("/explain", files={"file": ("x.png", png_bytes(square_image("br", 40, seed=5)), "image/png")})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (32, 32)
    info = client.get("/model").json()
    assert info["classes"] == ["a_tl", "b_br"] and info["input"]["height"] == 32
    assert client.get("/health").json() == {"status": "ok"}
    page = client.get("/").text
    assert "a_tl, b_br" in page and "http://" not in page and "https://" not in page  # no external resources
    assert "/predict" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "name,content,status,message",
    [
        ("empty.jpg", b"", 400, "is empty"),
        ("notes.jpg", b"this is text, not a picture\n" * 10, 400, "not an image"),
        ("cut.jpg", None, 400, "truncated or corrupt"),
        ("bomb.png", huge_png_header(), 400, "too large an image"),
        ("big.jpg", b"\xff" * (20 * 1024 * 1024), 413, "upload too large"),
    ],
)
def test_bad_uploads_get_a_clear_4xx_and_the_server_keeps_serving(client, name, content, status, message):
    if content is None:  # a JPEG cut in half
        out = io.BytesIO()
        square_image("tl", 200, seed=3).save(out, format="JPEG")
        content = out.getvalue()[: len(out.getvalue()) // 2]
    answer = client.post("/predict", files={"file": (name, content, "image/jpeg")})
    assert answer.status_code == status and message in answer.json()["error"], answer.text
    good = client.post("/predict", files={"file": ("ok.png", png_bytes(square_image("tl", 40)), "image/png")})
    assert good.status_code == 200


def test_missing_field_and_wrong_field(client):
    answer = client.post("/predict", files={"image": ("x.png", png_bytes(square_image("tl", 40)), "image/png")})
    assert answer.status_code == 422 and "missing the form field 'file'" in answer.json()["error"]
    assert client.post("/predict").status_code == 422


def test_a_model_holding_code_is_refused(run, tmp_path, monkeypatch, capsys):
    import shutil

    import keras

    from conftest import run_cli

    evil = tmp_path / "evil"
    shutil.copytree(run, evil)
    inputs = keras.Input((32, 32, 3), dtype="uint8")
    x = keras.layers.Lambda(lambda t: keras.ops.cast(t, "float32") / 255.0)(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(evil / "model.keras")
    from imgclf import ImgclfError

    with pytest.raises(ImgclfError, match="cannot load the model"):
        Predictor.from_run(evil)
    image = sorted((run.parent / "data" / "a_tl").glob("*.png"))[0]
    for command in (("predict", evil, image), ("evaluate", evil, run.parent / "data")):
        code, _, err = run_cli(monkeypatch, capsys, *command)
        assert code == 2 and "Lambda" in err and "safe" in err.lower()


def test_uploads_streamed_without_a_content_length_are_counted_too(run):
    """A chunked upload (no Content-Length) is refused once the bytes received pass the limit."""
    app = create_app(Predictor.from_run(run), name="squares", max_upload_bytes=64 * 1024)

    def chunks():  # a well-formed multipart start, then a file that never ends within the limit
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        yield b"Content-Type: image/jpeg\r\n\r\n"
        for _ in range(64):
            yield b"\xff" * 4096  # 256 KiB in all
        yield b"\r\n--x--\r\n"

    with TestClient(app) as c:
        answer = c.post("/predict", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert answer.status_code == 413 and "limit is 65,536 bytes" in answer.json()["error"]
        assert c.get("/health").status_code == 200
