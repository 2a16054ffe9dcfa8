"""imgclf pack: TFRecord shards + manifest, lossless for the class map and counts, read by train/evaluate/predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli, write_class_folder

from imgclf import ImageClassifier, ImgclfError
from imgclf.data.folders import load_folder
from imgclf.data.images import ImageSpec, load_image
from imgclf.data.packed import is_packed, load_packed
from imgclf.pipeline.records import pack, read_images, record_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("packdata")
    folder = write_class_folder(root / "data", {"a_tl": 20, "b_br": 20, "c_stripes": 12}, size=40)
    (folder / "a_tl" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # skipped when packing
    return folder


@pytest.fixture(scope="module")
def packed(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("packed") / "shards"
    pack(data, out, image=ImageSpec((32, 32)), shard_size_mb=0.02)  # ~6 images of 32x32x3 per shard
    return out


def test_pack_is_lossless_for_classes_counts_and_pixels(data, packed):
    manifest = json.loads((packed / "manifest.json").read_text())
    folder = load_folder(data)  # the split training makes of the same folder (seed 0, 0.2)
    assert manifest["classes"] == ["a_tl", "b_br", "c_stripes"] and is_packed(packed)
    assert manifest["splits"]["train"]["count"] == len(folder.train) - 1  # the broken file is left out...
    assert manifest["splits"]["validation"]["count"] == len(folder.validation)
    assert any(s["path"].endswith("broken.png") for s in manifest["skipped"])
    shards = manifest["splits"]["train"]["shards"]
    assert len(shards) >= 4 and sum(s["records"] for s in shards) == manifest["splits"]["train"]["count"]
    for shard in shards:  # the checksums and sizes are the files'
        import hashlib

        blob = (packed / shard["file"]).read_bytes()
        assert len(blob) == shard["bytes"] and hashlib.sha256(blob).hexdigest() == shard["sha256"]
    loaded = load_packed(packed)
    assert loaded.class_names == folder.class_names and loaded.layout == "packed"
    np.testing.assert_array_equal(loaded.validation.labels, folder.validation.labels)
    images = read_images(loaded.validation.records)  # pixels are exactly what training decodes
    want = np.stack([load_image(p, (32, 32)) for p in folder.validation.paths])
    np.testing.assert_array_equal(images, want)
    assert loaded.validation.paths[0] == str(folder.validation.paths[0]).split("data/", 1)[1]


def test_stream_is_shuffled_bounded_and_sharded_by_file(packed):
    records = load_packed(packed).train.records
    common = dict(class_mode="sparse", num_classes=3, image=ImageSpec((32, 32)), batch_size=64)
    once = [int(y) for _, ys in record_dataset(records, **common) for y in ys]
    epochs = [[int(y) for _, ys in ds for y in ys] for ds in [record_dataset(records, shuffle=True, seed=1,
                                                                             **common)] * 2]  # fmt: skip
    assert sorted(epochs[0]) == sorted(once) and epochs[0] != epochs[1]  # every record once, reshuffled
    halves = [[int(y) for _, ys in record_dataset(records, shard=(2, i), **common) for y in ys] for i in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(once) and halves[0] and halves[1]
    with pytest.raises(ImgclfError, match=r"packed at target_size \(32, 32\)"):
        record_dataset(records, **{**common, "image": ImageSpec((64, 64))})


def test_packed_and_folder_runs_reach_the_same_accuracy(data, packed, tmp_path):
    """The same data, model, seed and epochs from a folder and from shards: validation accuracy within 0.1
    (shuffling differs: the shard stream mixes through a buffer)."""
    settings = dict(model="course_small", target_size=(32, 32), epochs=4, batch_size=8, seed=0)
    from_folder = ImageClassifier(**settings).fit(data, verbose=0)
    from_shards = ImageClassifier(**settings).fit(packed, run_dir=tmp_path / "run", verbose=0)
    a, b = from_folder.history_[-1]["val_accuracy"], from_shards.history_[-1]["val_accuracy"]
    assert b >= 0.8 and abs(a - b) <= 0.1, (a, b)
    assert list(from_shards.classes_) == ["a_tl", "b_br", "c_stripes"]


def test_cli_pack_then_train_evaluate_predict(data, tmp_path, monkeypatch, capsys):
    out = tmp_path / "shards"
    code, table, err = run_cli(monkeypatch, capsys, "pack", data, out, "--target-size", "32", "32")
    assert code == 0 and "train" in table and "1 unreadable file(s) skipped" in " ".join(err.split())
    code, _, err = run_cli(monkeypatch, capsys, "pack", data, out)  # never overwrites
    assert code == 2 and "OUT must be a new or empty folder" in " ".join(err.split())
    run = tmp_path / "run"
    code, _, _ = run_cli(monkeypatch, capsys, "train", out, "--runs-dir", tmp_path, "--name", "run", "--model",
                         "course_small", "--target-size", "32", "32", "--epochs", "2", "--batch-size", "8",
                         "--no-calibrate")  # fmt: skip
    assert code == 0 and (run / "model.keras").is_file()
    code, _, _ = run_cli(monkeypatch, capsys, "evaluate", run, out)
    metrics = json.loads((run / "evaluations" / out.name / "metrics.json").read_text())
    assert code == 0 and metrics["n"] == 11 and metrics["data"] == str(out.resolve())  # the packed validation split
    code, lines, _ = run_cli(monkeypatch, capsys, "predict", run, out)
    rows = lines.strip().splitlines()
    assert code == 0 and len(rows) == 52 and rows[0].startswith(f"{out}#")
    code, _, err = run_cli(monkeypatch, capsys, "train", out, "--runs-dir", tmp_path, "--target-size", "48", "48")
    assert code == 2 and "packed at target_size (32, 32)" in " ".join(err.split())


def test_packed_data_at_a_url_trains_and_predicts(data, tmp_path):
    """Any ``tf.io.gfile`` URL works as OUT and DATA; TensorFlow's in-memory ``ram://`` file system stands in for
    ``gs://`` / ``s3://`` here (no network)."""
    import yaml

    url = "ram://imgclf-test/packed"
    pack(data, url, image=ImageSpec((32, 32)), shard_size_mb=0.05)
    run = tmp_path / "run"
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=2, batch_size=8).fit(url, run_dir=run,
                                                                                                 verbose=0)  # fmt: skip
    assert len(clf.history_) == 2 and yaml.safe_load((run / "config.yaml").read_text())["data"]["path"] == url
    assert len(clf.predict(url)) == 52


def test_a_failed_pack_leaves_no_folder(tmp_path):
    bad = tmp_path / "bad"
    for cls in ("a", "b"):
        (bad / cls).mkdir(parents=True)
        for i in range(3):
            (bad / cls / f"x{i}.png").write_bytes(b"not an image")
    with pytest.raises(ImgclfError, match="none of the training images"):
        pack(bad, tmp_path / "out", image=ImageSpec((16, 16)))
    assert not (tmp_path / "out").exists()


def test_packed_samples_serve_feature_keys_and_in_memory_reads(data, packed, tmp_path):
    """What reads images outside training — the backbone-feature cache key, evaluation, export checks — takes
    packed samples too (their names are not files)."""
    from imgclf.features.extract import feature_cache_key
    from imgclf.pipeline.records import in_memory

    loaded = load_packed(packed)
    key = feature_cache_key(["squeezenet1_1"], loaded)
    assert key == feature_cache_key(["squeezenet1_1"], load_packed(packed))  # stable
    other = tmp_path / "other"
    pack(data, other, image=ImageSpec((32, 32)), shard_size_mb=0.02, seed=1)  # same images, another order
    assert feature_cache_key(["squeezenet1_1"], load_packed(other)) != key
    held = in_memory(loaded.validation)
    assert held.images.shape == (11, 32, 32, 3) and held.paths == loaded.validation.paths
    assert in_memory(load_folder(data).validation).images is None  # files stay files


def _tamper(manifest: dict, case: str, folder) -> None:
    train = manifest["splits"]["train"]
    if case == "phantom_class":  # a class the data does not hold: it would train a phantom output
        manifest["classes"].append("d_phantom")
    elif case == "duplicate_class":
        manifest["classes"][1] = manifest["classes"][0]
    elif case == "label_out_of_range":
        train["labels"][0] = 7
    elif case == "escape_path":
        train["shards"][0]["file"] = "../../etc/passwd"
    elif case == "absolute_path":
        train["shards"][0]["file"] = "/etc/passwd"
    elif case == "shard_count":
        train["shards"][0]["records"] += 1
    elif case == "no_train":
        del manifest["splits"]["train"]
    elif case == "classes_type":
        manifest["classes"] = "a_tl"
    elif case == "huge_size":
        manifest["target_size"] = [100000, 100000]
    elif case == "swapped_shard":  # the bytes of another shard under this one's name
        first, second = train["shards"][0]["file"], train["shards"][1]["file"]
        (folder / first).write_bytes((folder / second).read_bytes())
    elif case == "truncated_shard":
        shard = folder / train["shards"][-1]["file"]
        shard.write_bytes(shard.read_bytes()[:100])
    elif case == "missing_shard":
        (folder / train["shards"][0]["file"]).unlink()


@pytest.mark.parametrize(
    ("case", "message"),
    [("phantom_class", "'d_phantom' has no training images"), ("duplicate_class", "distinct"),
     ("label_out_of_range", "does not name one of the 3 classes"), ("escape_path", "plain names inside the pack"),
     ("absolute_path", "plain names inside the pack"), ("shard_count", "shards hold"), ("no_train", "train split"),
     ("classes_type", "classes must be a list"), ("huge_size", "target_size must be two ints"),
     ("swapped_shard", "SHA-256 differs"), ("truncated_shard", "SHA-256 differs"),
     ("missing_shard", "cannot read shard")],
)  # fmt: skip
def test_a_tampered_pack_is_refused_before_training(packed, tmp_path, monkeypatch, capsys, case, message):
    import shutil

    folder = tmp_path / "pack"
    shutil.copytree(packed, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    _tamper(manifest, case, folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ImgclfError, match=message):
        load_packed(folder)
    code, _, err = run_cli(monkeypatch, capsys, "train", folder, "--runs-dir", tmp_path / "runs", "--epochs", "1")
    assert code == 2 and message.split("'")[0] in " ".join(err.split()) and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("model.keras"))
