"""Named datasets: downloads tested for real through a local HTTP server on 127.0.0.1 serving generated archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
from helpers import HAPPY_OR_SAD, requires_shared, run_cli, square_image

from imgclf.data.folders import load_folder
from imgclf.data.named import DatasetSpec, RemoteFile, download, extract_archive, load_registry, resolve
from imgclf.errors import ImgclfError


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def png(corner: str, seed: int) -> bytes:
    buf = io.BytesIO()
    square_image(corner, 32, seed).save(buf, "PNG")
    return buf.getvalue()


GOOD = make_zip(
    {f"pets/{c}/{i}.png": png("tl" if c == "cats" else "br", i) for c in ("cats", "dogs") for i in range(6)}
)
SLIP = make_zip({"pets/cats/0.png": png("tl", 0), "../../evil.txt": b"owned"})


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802  (http.server's name)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.endswith("cut.zip"):  # an interrupted transfer: half the bytes, then the connection drops
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    Handler.files = {"/good.zip": GOOD, "/slip.zip": SLIP, "/cut.zip": GOOD}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def registry(url: str, sha256: str | None, name: str = "pets") -> dict[str, DatasetSpec]:
    remote = RemoteFile((url,), sha256, None, "")
    return {name: DatasetSpec(name, "test pets", "single", files=(remote,))}


def test_download_success_and_cache(server, tmp_path):
    reg = registry(f"{server}/good.zip", hashlib.sha256(GOOD).hexdigest())
    seen = []
    path = download("pets", tmp_path, registry=reg, progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "datasets" / "pets" and (path / ".complete").is_file()
    assert seen[-1] == (len(GOOD), len(GOOD))
    ds = load_folder(path, validation_split=0)
    assert ds.class_names == ("cats", "dogs") and len(ds.train) == 12
    # Offline now: a second call needs no server (a URL that cannot work proves it).
    assert download("pets", tmp_path, registry=registry("http://127.0.0.1:9/none.zip", None)) == path


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    reg = registry(f"{server}/good.zip", "0" * 64)
    with pytest.raises(ImgclfError, match=r"failed its checksum: sha256 [0-9a-f]{64}, expected 0{64}"):
        download("pets", tmp_path, registry=reg)
    assert not (tmp_path / "datasets" / "pets").exists()
    assert list((tmp_path / "datasets").iterdir()) == []  # no half-extracted staging folder either
    assert not (tmp_path / "downloads" / "good.zip").exists()


def test_interrupted_transfer(server, tmp_path):
    with pytest.raises(ImgclfError, match="interrupted"):
        download("pets", tmp_path, registry=registry(f"{server}/cut.zip", hashlib.sha256(GOOD).hexdigest()))
    assert not (tmp_path / "datasets" / "pets").exists()
    assert [p.name for p in (tmp_path / "downloads").iterdir()] == []


def test_zip_slip_rejected(server, tmp_path):
    with pytest.raises(ImgclfError, match="zip-slip"):
        download("pets", tmp_path / "home", registry=registry(f"{server}/slip.zip", hashlib.sha256(SLIP).hexdigest()))
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "home" / "datasets" / "pets").exists()


def test_trust_on_first_use_pins_the_checksum(server, tmp_path):
    download("pets", tmp_path, registry=registry(f"{server}/good.zip", None))
    pinned = (tmp_path / "downloads" / "good.zip.sha256").read_text().strip()
    assert pinned == hashlib.sha256(GOOD).hexdigest()
    (tmp_path / "downloads" / "good.zip").write_bytes(GOOD[:-10] + b"tampered!!")  # the cached copy changes
    import shutil

    shutil.rmtree(tmp_path / "datasets" / "pets")
    with pytest.raises(ImgclfError, match="failed its checksum"):
        download("pets", tmp_path, registry=registry(f"{server}/good.zip", None))


@pytest.mark.parametrize("bad", [b"this is not an archive", make_zip({}), make_zip({"readme.txt": b"no images"})],
                         ids=["garbage", "empty-zip", "no-images"])  # fmt: skip
def test_a_rejected_archive_is_never_trusted_nor_marked_complete(server, tmp_path, bad):
    """Without a published checksum the first copy is trusted only once it unpacked into images: a garbage, empty
    or image-less archive given with --from leaves no pinned checksum and no dataset, and the genuine archive
    is accepted afterwards (from the network here)."""
    (tmp_path / "good.zip").write_bytes(bad)
    reg = registry(f"{server}/good.zip", None)
    with pytest.raises(ImgclfError, match="not a zip or tar archive|unpacked to no image file"):
        download("pets", tmp_path / "home", source=tmp_path / "good.zip", registry=reg)
    assert not (tmp_path / "home" / "downloads" / "good.zip.sha256").exists()
    assert not (tmp_path / "home" / "datasets" / "pets").exists()
    assert (tmp_path / "good.zip").read_bytes() == bad  # the user's file is left alone
    path = download("pets", tmp_path / "home", registry=reg)
    assert len(load_folder(path, validation_split=0).train) == 12
    assert (tmp_path / "home" / "downloads" / "good.zip.sha256").read_text().strip() == hashlib.sha256(GOOD).hexdigest()


def test_a_downloaded_archive_that_does_not_unpack_is_not_kept(server, tmp_path):
    Handler.files["/junk.zip"] = b"<html>Sorry, rate limited</html>"
    reg = registry(f"{server}/junk.zip", None)
    with pytest.raises(ImgclfError, match="not a zip or tar archive"):
        download("pets", tmp_path, registry=reg)
    assert sorted(p.name for p in (tmp_path / "downloads").iterdir()) == []


def test_extraction_guards(tmp_path):
    bomb = make_zip({"big.bin": b"\0" * 10_000_000})  # compresses to ~10 KB
    (tmp_path / "bomb.zip").write_bytes(bomb)
    with pytest.raises(ImgclfError, match="zip bomb"):
        extract_archive(tmp_path / "bomb.zip", tmp_path / "out", max_bytes=1_000_000)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("pets/cats/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    (tmp_path / "link.tar").write_bytes(buf.getvalue())
    with pytest.raises(ImgclfError, match="link 'pets/cats/link.png'"):
        extract_archive(tmp_path / "link.tar", tmp_path / "out2")
    (tmp_path / "abs.zip").write_bytes(make_zip({"/etc/evil": b"x"}))
    with pytest.raises(ImgclfError, match="zip-slip"):
        extract_archive(tmp_path / "abs.zip", tmp_path / "out3")


def test_from_local_archive_and_folder_offline(tmp_path):
    (tmp_path / "good.zip").write_bytes(GOOD)
    reg = registry("http://127.0.0.1:9/good.zip", hashlib.sha256(GOOD).hexdigest())
    path = download("pets", tmp_path / "home", source=tmp_path / "good.zip", registry=reg)
    assert len(load_folder(path, validation_split=0).train) == 12
    with pytest.raises(ImgclfError, match="failed its checksum"):
        (tmp_path / "other.zip").write_bytes(SLIP)
        download("pets", tmp_path / "home2", source=tmp_path / "other.zip", registry=reg)


def test_registry_entries():
    reg = load_registry()
    assert {"cats_vs_dogs", "cats_vs_dogs_full", "horses_or_humans", "rock_paper_scissors", "happy_or_sad",
            "sign_mnist", "digits"} <= set(reg)  # fmt: skip
    for name, spec in reg.items():
        assert spec.description and spec.licence and spec.citation, name
        for f in spec.files:
            assert f.urls and all(u.startswith("https://") for u in f.urls)
            assert f.sha256 is None or len(f.sha256) == 64
    assert len(reg["horses_or_humans"].files) == 2 and reg["sign_mnist"].instructions


@requires_shared(HAPPY_OR_SAD)
def test_named_dataset_from_local_folder_then_train_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    code, out, _ = run_cli(monkeypatch, capsys, "datasets", "download", "happy_or_sad", "--from", HAPPY_OR_SAD)
    assert code == 0 and Path(out.strip()) == tmp_path / "home" / "datasets" / "happy_or_sad"
    assert resolve("happy_or_sad") == Path(out.strip())
    code, out, _ = run_cli(monkeypatch, capsys, "datasets", "path", "happy_or_sad")
    assert code == 0 and out.strip().endswith("happy_or_sad")
    code, _, err = run_cli(monkeypatch, capsys, "train", "happy_or_sad", "--target-size", 32, 32, "--epochs", 1,
                           "--runs-dir", tmp_path / "runs", "--name", "hs")  # fmt: skip
    assert code == 0 and "belonging to 2 classes: happy, sad" in err
