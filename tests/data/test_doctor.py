"""`imgclf doctor` on a gauntlet of bad and awkward files inside an otherwise valid dataset."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
from helpers import CATS_AND_DOGS, requires_shared, run_cli, write_class_folder
from PIL import Image

from imgclf import ImageClassifier, ImgclfError
from imgclf.data import doctor as doc


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's calling card)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def _jpeg_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


#: file (relative to the dataset root) → the problem doctor must name for it.
EXPECTED = {
    "train/a_tl/empty.jpg": "zero_length",
    "train/a_tl/page.jpg": "not_image",
    "train/a_tl/notes.txt": "not_image",
    "train/a_tl/truncated.jpg": "corrupt",
    "train/a_tl/garbage.jpg": "corrupt",
    "train/a_tl/scan.tiff": "unsupported_format",
    "train/a_tl/bomb.png": "oversized",
    "train/a_tl/really_png.jpg": "extension_mismatch",
    "train/a_tl/animated.gif": "multi_frame",
    "train/a_tl/cmyk.jpg": "cmyk",
    "train/a_tl/alpha.png": "transparency",
    "train/a_tl/palette.png": "palette",
    "train/a_tl/deep.png": "16bit",
    "train/a_tl/gray.jpg": "grayscale",
    "train/a_tl/phone.jpg": "exif_rotated",
    "train/a_tl/thumb.png": "tiny",
    "train/a_tl/copy_of_000.png": "duplicate",
    "train/a_tl/brighter_001.png": "near_duplicate",
    "validation/a_tl/leaked_002.png": "leak",
    "train/b_br/mislabelled_003.png": "label_conflict",
}


@pytest.fixture
def gauntlet(tmp_path):
    root = tmp_path / "gauntlet"
    write_class_folder(root / "train", {"a_tl": 16, "b_br": 16}, size=48)
    write_class_folder(root / "validation", {"a_tl": 6, "b_br": 6}, start=500, size=48)
    d = root / "train" / "a_tl"
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    (d / "empty.jpg").write_bytes(b"")
    (d / "page.jpg").write_text("<!DOCTYPE html><html><body>Moved permanently</body></html>")
    (d / "notes.txt").write_text("downloaded from somewhere")
    full = _jpeg_bytes(photo)
    (d / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (d / "garbage.jpg").write_bytes(full[:20] + rng.integers(0, 255, 3000, dtype=np.uint8).tobytes())
    photo.save(d / "scan.tiff")
    (d / "bomb.png").write_bytes(_png_with_size(30000, 30000))
    photo.save(d / "really_png.jpg", "PNG")
    frames = [Image.new("RGB", (48, 48), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:])
    (d / "cmyk.jpg").write_bytes(_jpeg_bytes(photo.convert("CMYK")))
    rgba = photo.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "alpha.png")
    photo.convert("P").save(d / "palette.png")
    Image.fromarray(rng.integers(0, 65535, (48, 48), dtype=np.uint16)).save(d / "deep.png")
    photo.convert("L").save(d / "gray.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    (d / "phone.jpg").write_bytes(_jpeg_bytes(photo, exif=exif))
    photo.resize((16, 16)).save(d / "thumb.png")
    shutil.copy(d / "000.png", d / "copy_of_000.png")
    brighter = np.clip(np.asarray(Image.open(d / "001.png"), np.int16) + 3, 0, 255).astype(np.uint8)
    Image.fromarray(brighter).save(d / "brighter_001.png")
    shutil.copy(d / "002.png", root / "validation" / "a_tl" / "leaked_002.png")
    shutil.copy(d / "003.png", root / "train" / "b_br" / "mislabelled_003.png")
    return root


def test_doctor_names_every_problem(gauntlet):
    report = doc.diagnose_folder(gauntlet)
    by_path = {f["path"]: f["problems"] for f in report["files"]}
    assert len(set(EXPECTED.values())) >= 15
    for path, problem in EXPECTED.items():
        assert problem in by_path[path], (path, by_path[path])
    unusable = set(report["unusable"])
    assert unusable == {p for p, problem in EXPECTED.items() if doc.PROBLEMS[problem][0]}
    clean = [f for f in report["files"] if f["path"].endswith(("/010.png", "/011.png"))]
    assert clean and all(not f["problems"] for f in clean)
    assert report["counts"]["train"]["b_br"] == 17


def test_train_completes_then_fix_and_restore_lose_nothing(gauntlet, tmp_path, monkeypatch, capsys):
    before = sorted(p.relative_to(gauntlet).as_posix() for p in gauntlet.rglob("*") if p.is_file())
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=1, batch_size=8)
    clf.fit(gauntlet, run_dir=tmp_path / "run", verbose=0)  # never dies on a bad file
    skipped = {s["path"] for s in json.loads((tmp_path / "run" / "skipped.json").read_text())}
    assert {
        str(gauntlet / p) for p in ("train/a_tl/empty.jpg", "train/a_tl/page.jpg", "train/a_tl/bomb.png")
    } <= skipped

    code, out, _ = run_cli(monkeypatch, capsys, "doctor", gauntlet, "--fix")
    assert code == 0 and "oversized" in out and "leak" in out
    manifest = json.loads((gauntlet / ".quarantine" / "manifest.json").read_text())
    quarantined = {m["original"] for m in manifest}
    assert quarantined == {p for p, problem in EXPECTED.items() if doc.PROBLEMS[problem][0]}
    for path in before:  # every original file is still there, or in quarantine with a manifest entry
        assert (gauntlet / path).exists() or ((gauntlet / ".quarantine" / path).exists() and path in quarantined)
    assert doc.diagnose_folder(gauntlet)["unusable"] == []  # the quarantine is not scanned

    code, out, _ = run_cli(monkeypatch, capsys, "doctor", gauntlet, "--restore")
    after = sorted(
        p.relative_to(gauntlet).as_posix() for p in gauntlet.rglob("*") if p.is_file() and ".quarantine" not in p.parts
    )
    assert code == 0 and after == before


def test_doctor_json(gauntlet, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", gauntlet, "--json", "--quick")
    report = json.loads(out)
    assert code == 0 and "zero_length" in report["problems"] and report["files_per_second"] > 0


@requires_shared(CATS_AND_DOGS)
def test_doctor_on_cats_and_dogs_is_clean():
    report = doc.diagnose_folder(CATS_AND_DOGS)
    assert len(report["files"]) == 3000 and report["unusable"] == []
    assert report["counts"]["validation"] == {"cats": 500, "dogs": 500}
    # Perceptual hashing must not flood real photos with false near-duplicates (one real pair is known).
    assert len(report["problems"].get("near_duplicate", [])) <= 3


def test_quarantine_never_overwrites_and_a_bad_manifest_is_an_error(tmp_path):
    from imgclf.data.doctor import quarantine, restore

    root = tmp_path / "d"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "bad.jpg").write_bytes(b"first")
    quarantine(root, ["cats/bad.jpg"])
    (root / "cats" / "bad.jpg").write_bytes(b"second")  # the same name goes bad again
    quarantine(root, ["cats/bad.jpg"])
    kept = sorted(p.read_bytes() for p in (root / ".quarantine" / "cats").iterdir())
    assert kept == [b"first", b"second"]  # both are there: nothing overwritten
    assert restore(root) == ["cats/bad.jpg"]  # one goes back; the other stays quarantined, still in the manifest
    assert (root / "cats" / "bad.jpg").read_bytes() == b"first"
    assert len(json.loads((root / ".quarantine" / "manifest.json").read_text())) == 1
    (root / ".quarantine" / "manifest.json").write_text("{not json")
    with pytest.raises(ImgclfError, match="manifest .* is unreadable"):
        restore(root)


def test_doctor_names_links_and_special_files_without_hanging(tmp_path, monkeypatch, capsys):
    """Links that loop, duplicate or leave DATA are reported (and not walked); a dangling link and a FIFO named
    .jpg are unusable and never opened (opening the FIFO would block forever); --fix moves them aside, the data
    stays as it was."""
    import os
    import signal

    data = write_class_folder(tmp_path / "data", {"cats": 6, "dogs": 6}, size=40)
    (data / "cats" / "up").symlink_to("..")
    (data / "cats" / "self").symlink_to(".")
    (data / "cats" / "dogs_too").symlink_to("../dogs")
    outside = write_class_folder(tmp_path / "elsewhere", {"more": 2}, size=40) / "more"
    (data / "dogs" / "more").symlink_to(outside)
    (data / "dogs" / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(data / "dogs" / "pipe.jpg")
    signal.alarm(60)  # a hang fails the test instead of stopping the suite
    try:
        report = doc.diagnose_folder(data)
        code, out, err = run_cli(monkeypatch, capsys, "doctor", data, "--fix")
    finally:
        signal.alarm(0)
    found = {f["path"]: f["problems"] for f in report["files"]}
    assert found["cats/up"] == ["link_loop"] and found["cats/self"] == ["link_loop"]
    assert found["cats/dogs_too"] == ["link_duplicate"] and found["dogs/more"] == ["link_outside"]
    assert found["dogs/gone.jpg"] == ["broken_link"] and found["dogs/pipe.jpg"] == ["not_regular_file"]
    assert sorted(report["unusable"]) == ["dogs/gone.jpg", "dogs/pipe.jpg"]
    assert report["counts"] == {"all": {"cats": 6, "dogs": 6}}  # each image once
    assert code == 0 and "link_loop" in out
    assert not (data / "dogs" / "pipe.jpg").exists() and (data / ".quarantine" / "dogs" / "pipe.jpg").exists()
    assert (data / "cats" / "up").is_symlink() and len(list(outside.iterdir())) == 2  # links are only reported


def test_a_file_doctor_cannot_open_is_reported_not_a_crash(tmp_path, monkeypatch):
    """Root reads every file, so the refusal is simulated where doctor reads one."""
    import errno
    import os
    from pathlib import Path

    data = write_class_folder(tmp_path / "data", {"cats": 3, "dogs": 3}, size=40)
    locked = data / "cats" / "001.png"
    real = Path.read_bytes

    def read_bytes(self):
        if self == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    report = doc.diagnose_folder(data)
    found = {f["path"]: f for f in report["files"]}
    assert (
        found["cats/001.png"]["problems"] == ["unreadable"] and "Permission denied" in found["cats/001.png"]["detail"]
    )
    assert report["unusable"] == ["cats/001.png"] and report["counts"] == {"all": {"cats": 2, "dogs": 3}}
