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
from helpers import square_image, wait_until  # noqa: E402

from imgclf import ImageClassifier  # noqa: E402
from imgclf.deploy.serve.app import create_app  # noqa: E402
from imgclf.predict.predictor import Predictor  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory, trained_runs):
    return trained_runs.squares(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def client(run):
    app = create_app(Predictor.from_run(run), name="squares")  # the default 10 MB upload limit
    with TestClient(app, base_url="http://127.0.0.1") as c:  # runs the lifespan: the micro-batching loop
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
    images = np.stack([np.asarray(square_image(kind, 40, seed=s)) for kind, s in (("tl", 900), ("br", 901))])
    library = expected.predictions(images)
    for q, score, unknown in zip(body["predictions"], library.ood_score, library.unknown):
        assert q["unknown"] is bool(unknown) and q["ood_score"] == pytest.approx(float(score), rel=1e-4, abs=1e-6)


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
    for page in ("/docs", "/redoc"):  # they load scripts from a CDN: not served (nothing leaves this computer)
        answer = client.get(page)
        assert answer.status_code == 404 and "error" in answer.json()


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
    from helpers import run_cli

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

    with TestClient(app, base_url="http://localhost") as c:
        answer = c.post("/predict", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert answer.status_code == 413 and "limit is 65,536 bytes" in answer.json()["error"]
        assert c.get("/health").status_code == 200


def test_hostile_clients_get_json_errors_and_cannot_stall_the_server(run):
    import threading
    import time

    from imgclf.deploy.serve.uploads import decode_uploads

    predictor = Predictor.from_run(run)  # class and run names with markup: escaped where OpenAPI renders them
    predictor.classes = ("<img src=x onerror=alert(1)>", "b_br")
    app = create_app(predictor, name="<script>alert(1)</script>")
    with TestClient(app, base_url="http://localhost") as c:
        description = c.get("/openapi.json").json()["info"]["description"]
        assert "<script>" not in description and "&lt;script&gt;" in description and "<img" not in description
        evil = c.get("/health", headers={"host": "attacker.example"})  # DNS rebinding: another site's name
        assert evil.status_code == 400 and "not served here" in evil.json()["error"]
        assert c.get("/health", headers={"host": "127.0.0.1:8000"}).status_code == 200
        two = [("file", (f"{i}.png", png_bytes(square_image("tl", 40)), "image/png")) for i in range(2)]
        answer = c.post("/explain", files=two)
        assert answer.status_code == 400 and "one image" in answer.json()["error"]
        assert "error" in c.post("/health").json()  # 405: the same {"error"} form
        # Many small files declaring huge pictures: refused by their headers, before any decode.
        many = [("file", (f"{i}.png", huge_png_header(6000), "image/png")) for i in range(3)]
        answered, started = [], time.perf_counter()

        def big():
            answered.append(c.post("/predict", files=many))

        worker = threading.Thread(target=big)
        worker.start()
        health = c.get("/health")
        worker.join(timeout=60)
        assert health.status_code == 200 and answered[0].status_code == 413, answered[0].text
        assert "at most 64,000,000 pixels" in answered[0].json()["error"] and time.perf_counter() - started < 10
    with pytest.raises(Exception, match="pixels"):
        decode_uploads([("a.png", huge_png_header(6000))] * 2, predictor)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_upload_bytes": 0}, "max_upload_bytes must be a positive"),
     ({"max_upload_bytes": -5}, "max_upload_bytes must be a positive"),
     ({"batch_window_ms": -5}, "batch_window_ms must be"), ({"batch_window_ms": float("nan")}, "batch_window_ms")],
)  # fmt: skip
def test_serve_limits_are_checked(run, options, message):
    from imgclf import ImgclfError

    with pytest.raises(ImgclfError, match=message):
        create_app(Predictor.from_run(run), **options)


def test_a_connection_sending_headers_slowly_is_closed(run):
    import socket
    import threading
    import time

    import uvicorn

    from imgclf.deploy.serve.guards import header_timeout_protocol

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Predictor.from_run(run))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           http=header_timeout_protocol(1.0)))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, "the server starting")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
            start = time.time()
            assert conn.recv(100) == b""  # closed by the server
            assert time.time() - start < 5
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:  # a whole request is answered
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"200 OK" in conn.recv(200)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
