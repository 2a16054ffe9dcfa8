"""The backbone registry: every entry builds, freezes, exposes its cut layer, outputs the documented shape;
SqueezeNet loads the real weights; ImageNet weights download through a local HTTP server with a checksum."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import h5py
import numpy as np
import pytest
from helpers import SHARED, requires_shared

from imgclf import ImageClassifier, ImgclfError
from imgclf.models import backbones as bb
from imgclf.models.transfer import create_transfer_model, split_at_features, unfreeze_top

SQUEEZE_WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: backbone → its cut layer's output shape at the default input size (documented in `imgclf backbones`).
FEATURES = {
    "inception_v3": (7, 7, 768),  # cut at mixed7 at 150x150, as the course prints
    "mobilenet_v2": (7, 7, 1280),
    "mobilenet_v3_small": (7, 7, 576),
    "mobilenet_v3_large": (7, 7, 960),
    "resnet50": (7, 7, 2048),
    "efficientnet_b0": (7, 7, 1280),
    "vgg16": (7, 7, 512),
    "squeezenet1_1": (13, 13, 512),
}


def test_registry_is_complete():
    assert sorted(FEATURES) == bb.list_backbones()


@pytest.mark.parametrize("name", bb.list_backbones())
def test_every_backbone(name):
    spec = bb.get_backbone(name)
    model = create_transfer_model(name, (*spec.default_size, 3), 3, "categorical", weights=None, head="course")
    extractor, head = split_at_features(model)
    assert tuple(extractor.output.shape[1:]) == FEATURES[name]
    if spec.cut_layer:
        assert model.get_layer(spec.cut_layer).output.shape[1:] == FEATURES[name]
    backbone_layers = [layer for layer in model.layers if not layer.name.startswith("head_") and layer.name != "output"]
    assert sum(layer.count_params() for layer in backbone_layers) == spec.params  # the registry's figure is true
    assert backbone_layers and not any(layer.trainable_weights for layer in backbone_layers)  # frozen
    assert {w.path.split("/")[0] for w in model.trainable_weights} <= {"head_dense", "output"}
    assert model.input.dtype == "uint8" and tuple(model.output.shape) == (None, 3)
    x = np.random.default_rng(0).integers(0, 256, (1, *spec.default_size, 3), dtype=np.uint8)
    assert np.asarray(model(x)).sum() == pytest.approx(1.0, rel=1e-5)


def test_cut_layer_and_errors():
    m = create_transfer_model("inception_v3", (150, 150, 3), 2, "binary", weights=None, cut_layer="mixed5", head="gap")
    assert m.get_layer("mixed5").output.shape[1:] == (7, 7, 768)
    with pytest.raises(ImgclfError, match="cut_layer 'mixed99' is not a layer of inception_v3"):
        create_transfer_model("inception_v3", (150, 150, 3), 2, "binary", weights=None, cut_layer="mixed99")
    with pytest.raises(ImgclfError, match="backbone must be one of"):
        create_transfer_model("alexnet", (150, 150, 3), 2, "binary", weights=None)
    with pytest.raises(ImgclfError, match="needs RGB"):
        create_transfer_model("vgg16", (64, 64, 1), 2, "binary", weights=None)
    with pytest.raises(ImgclfError, match="existing weight file"):
        create_transfer_model("vgg16", (64, 64, 3), 2, "binary", weights="/nowhere.h5")


def test_fine_tune_unfreezes_top_layers_but_not_batchnorm():
    m = create_transfer_model("mobilenet_v2", (96, 96, 3), 2, "binary", weights=None, head="gap")
    opened = unfreeze_top(m, 6)
    assert 0 < len(opened) <= 6 and all("bn" not in name and "BN" not in name for name in opened)
    assert all(m.get_layer(name).trainable for name in opened)
    assert not any(layer.trainable for layer in m.layers if "bn" in layer.name.lower())


@requires_shared(SQUEEZE_WEIGHTS)
def test_squeezenet_loads_the_real_weights():
    m = create_transfer_model("squeezenet1_1", (227, 227, 3), 2, "binary", weights=SQUEEZE_WEIGHTS, head="gap")
    with h5py.File(SQUEEZE_WEIGHTS) as f:
        for layer in ("conv1", "fire9/expand3x3"):  # first and last layers: '/' in the file, '_' in Keras
            names = [n.decode() if isinstance(n, bytes) else n for n in f[layer].attrs["weight_names"]]
            got = m.get_layer(layer.replace("/", "_")).get_weights()
            assert len(got) == len(names) == 2
            for value, name in zip(got, names):
                expected = f[layer][name][()]
                if layer == "conv1" and expected.ndim == 4:  # caffe's BGR input order is folded into the kernel
                    expected = expected[:, :, ::-1, :]
                np.testing.assert_array_equal(value, expected)
    params = sum(
        layer.count_params() for layer in m.layers if not layer.name.startswith("head_") and layer.name != "output"
    )
    assert params == 722_496  # ../shared/DATA.md


def write_squeezenet_h5(path):
    """A weight file laid out like the real one ('/' names), with random values from a built model."""
    model = create_transfer_model("squeezenet1_1", (227, 227, 3), 2, "binary", weights=None, head="gap")
    conv = [
        layer
        for layer in model.layers
        if layer.weights and not layer.name.startswith("head_") and layer.name != "output"
    ]
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [
            layer.name.replace("_", "/", 1).encode() if layer.name.startswith("fire") else layer.name.encode()
            for layer in conv
        ]
        for layer in conv:
            name = layer.name.replace("_", "/", 1) if layer.name.startswith("fire") else layer.name
            g = f.create_group(name)
            names = [f"{name}_W".encode(), f"{name}_b".encode()]
            g.attrs["weight_names"] = names
            for n, w in zip(names, layer.get_weights()):
                g.create_dataset(n.decode(), data=rng.normal(size=w.shape).astype("float32"))
    return path


@pytest.fixture
def weight_server(tmp_path):
    body = write_squeezenet_h5(tmp_path / "sq.h5").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/squeezenet_notop.h5", hashlib.sha256(body).hexdigest()
    httpd.shutdown()


def test_imagenet_weights_download_with_checksum(weight_server, tmp_path, monkeypatch):
    url, digest = weight_server
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    spec = bb.BACKBONES["squeezenet1_1"]
    monkeypatch.setitem(
        bb.BACKBONES, "squeezenet1_1", bb.BackboneSpec(**{**spec.__dict__, "weights_url": url, "weights_hash": digest})
    )
    m = create_transfer_model("squeezenet1_1", (227, 227, 3), 2, "binary", weights="imagenet", head="gap")
    with h5py.File(tmp_path / "sq.h5") as f:
        np.testing.assert_allclose(
            m.get_layer("fire2_squeeze1x1").get_weights()[0], f["fire2/squeeze1x1"]["fire2/squeeze1x1_W"][()]
        )
    assert (tmp_path / "home" / "weights" / "downloads" / "squeezenet_notop.h5").is_file()  # cached for next time
    monkeypatch.setitem(
        bb.BACKBONES,
        "squeezenet1_1",
        bb.BackboneSpec(**{**spec.__dict__, "weights_url": url + "?v=2", "weights_hash": "f" * 64}),
    )
    import shutil

    shutil.rmtree(tmp_path / "home")
    with pytest.raises(ImgclfError, match="failed its checksum"):
        create_transfer_model("squeezenet1_1", (227, 227, 3), 2, "binary", weights="imagenet", head="gap")


def test_classifier_with_backbone_and_fine_tuning(tmp_path):
    from helpers import write_class_folder

    data = write_class_folder(tmp_path / "d", {"a_tl": 16, "b_br": 16}, size=64)
    clf = ImageClassifier(backbone="mobilenet_v2", weights=None, target_size=(64, 64), head="gap", epochs=2,
                          batch_size=8, fine_tune=3, fine_tune_epochs=1)  # fmt: skip
    clf.fit(data, run_dir=tmp_path / "run", verbose=0)
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3] and clf.fine_tune_start_ == 3
    loaded = ImageClassifier.load(tmp_path / "run")  # the saved model is the whole backbone + head
    assert loaded.backbone == "mobilenet_v2" and loaded.model_.count_params() == clf.model_.count_params()
    paths = sorted(str(p) for p in (data / "a_tl").glob("*.png"))[:4]
    np.testing.assert_allclose(loaded.predict_proba(paths), clf.predict_proba(paths), rtol=1e-5, atol=1e-6)


def test_fine_tuning_anneals_the_learning_rate_and_resumes_inside_the_phase(tmp_path):
    from helpers import Crash, crash_after, write_class_folder

    from imgclf.runs.history import read_history_csv

    data = write_class_folder(tmp_path / "d", {"a_tl": 16, "b_br": 16}, size=64)
    settings = dict(backbone="squeezenet1_1", weights=None, target_size=(64, 64), head="gap", epochs=2, batch_size=8,
                    learning_rate=1e-3, fine_tune=3, fine_tune_epochs=4, calibrate=False)  # fmt: skip
    whole = ImageClassifier(**settings).fit(data, run_dir=tmp_path / "whole", verbose=0)
    rates = [r["learning_rate"] for r in whole.history_]
    assert rates[:2] == pytest.approx([1e-3, 1e-3])  # the frozen phase: constant
    assert 1e-4 > rates[2] > rates[3] > rates[4] > rates[5] and rates[5] == pytest.approx(0, abs=1e-9)  # annealed
    constant = ImageClassifier(**{**settings, "fine_tune_schedule": "constant"}).fit(data, verbose=0)
    assert [r["learning_rate"] for r in constant.history_][2:] == pytest.approx([1e-4] * 4)

    with pytest.raises(Crash):  # the run dies after epoch 4, inside the fine-tuning phase
        ImageClassifier(**settings).fit(data, run_dir=tmp_path / "crashed", callbacks=[crash_after(4)], verbose=0)
    resumed = ImageClassifier.resume(tmp_path / "crashed", verbose=0)
    history = read_history_csv(tmp_path / "crashed" / "history.csv")
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6] and resumed.fine_tune_start_ == 3
    # The optimizer and its schedule came back from last.keras: the rate goes on down to 0, not up to 1e-4 again.
    assert [r["learning_rate"] for r in history] == pytest.approx(rates, rel=1e-5, abs=1e-9)
    assert len(resumed.model_.trainable_weights) == len(whole.model_.trainable_weights)  # still unfrozen


def test_features_cached_on_disk_keyed_by_content(tmp_path, monkeypatch):
    from helpers import write_class_folder

    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 10, "b_br": 10}, size=64)
    settings = dict(backbone="squeezenet1_1", weights=None, target_size=(64, 64), head="gap", epochs=1, batch_size=8)
    first = ImageClassifier(**settings).fit(data, verbose=0)
    assert first.features_from_cache_ is False and len(list((tmp_path / "home" / "features").glob("*.npz"))) == 1
    second = ImageClassifier(**settings).fit(data, verbose=0)
    assert second.features_from_cache_ is True  # the backbone did not run again
    other = ImageClassifier(**{**settings, "cut_layer": "fire8_concat"}).fit(data, verbose=0)
    assert other.features_from_cache_ is False  # another cut layer, another key
    (data / "a_tl" / "000.png").write_bytes((data / "b_br" / "000.png").read_bytes())  # a file's content changes
    changed = ImageClassifier(**settings).fit(data, verbose=0)  # to a picture already seen: its stored features
    assert changed.features_from_cache_ is True and len(list((tmp_path / "home" / "features").glob("*.npz"))) == 3
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 90)).save(data / "a_tl" / "000.png")  # to a picture never seen
    assert ImageClassifier(**settings).fit(data, verbose=0).features_from_cache_ is False


def test_one_pass_calibrates_and_evaluates_from_the_cached_features(tmp_path, monkeypatch):
    """Issue 27: the pooled features training read serve calibration, the "unknown" reference and the report's
    evaluation; they must say what the saved model says when it reads the images itself."""
    from helpers import write_class_folder

    from imgclf.training import fit as training_fit

    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 18, "b_br": 18}, size=64)
    reread = []
    monkeypatch.setattr(training_fit, "calibrate", lambda *a, **k: reread.append(1))  # the second pass: not taken
    clf = ImageClassifier(backbone="squeezenet1_1", weights=None, target_size=(64, 64), head="gap", epochs=3,
                          batch_size=8, validation_split=0.3, seed=1, precision="float32")  # fmt: skip
    clf.fit(data, run_dir=tmp_path / "run", verbose=0)
    val = clf.dataset_.validation
    assert not reread and clf.calibration_["validation_images"] == len(val.labels) == 11
    assert clf.validation_proba_.shape == (11, 2)
    np.testing.assert_allclose(clf.validation_proba_, clf.predict_proba(list(val.paths)), atol=1e-4)
    predictor = ImageClassifier.load(tmp_path / "run").predictor()  # what predict will say, from model.keras
    seen = predictor.predict(list(clf.dataset_.train.paths), features=True).features
    norms = np.linalg.norm(seen, axis=1, keepdims=True)
    np.testing.assert_allclose(clf.ood_.reference.astype(np.float32), seen / norms, atol=2e-3)  # the reference
    scores = predictor.predict(list(val.paths)).ood_score
    assert np.isfinite(scores).all() and (scores > clf.ood_.thresholds["knn"]).sum() <= 2  # ~5 % of 11 called unknown
    assert json.loads((tmp_path / "run" / "calibration.json").read_text())["temperature"] == pytest.approx(
        clf.calibration_["temperature"]
    )


def test_one_pass_holds_in_bfloat16_and_auto_keeps_a_frozen_backbone_in_float32(tmp_path, monkeypatch):
    """Issue 36: a mixed_bfloat16 run with a frozen backbone calibrates and evaluates from the features training
    read (no second pass), within bfloat16's rounding of what the saved float32 model says; and ``auto`` chooses
    float32 for a frozen backbone even on a CPU with bfloat16 (measured faster there), bfloat16 for a ConvNet."""
    from helpers import write_class_folder

    from imgclf.models import precision as precisions
    from imgclf.settings.resolved import resolve
    from imgclf.training import fit as training_fit

    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 18, "b_br": 18}, size=64)
    reread = []
    monkeypatch.setattr(training_fit, "calibrate", lambda *a, **k: reread.append(1))
    clf = ImageClassifier(backbone="squeezenet1_1", weights=None, target_size=(64, 64), head="gap", epochs=3,
                          batch_size=8, validation_split=0.3, seed=1, precision="mixed_bfloat16")  # fmt: skip
    clf.fit(data, run_dir=tmp_path / "run", verbose=0)
    val = clf.dataset_.validation
    assert not reread and clf.calibration_["validation_images"] == len(val.labels) == 11
    saved = clf.predict_proba(list(val.paths))  # the float32 model.keras reading the images
    np.testing.assert_allclose(clf.validation_proba_, saved, atol=2e-2)
    assert (clf.validation_proba_.argmax(1) == saved.argmax(1)).all()
    monkeypatch.setattr(precisions, "cpu_has_bf16", lambda: True)  # as on AVX512-BF16 / AMX CPUs
    frozen = resolve(ImageClassifier(backbone="squeezenet1_1", weights=None))
    tuned = resolve(ImageClassifier(backbone="squeezenet1_1", weights=None, fine_tune=2))
    scratch = resolve(ImageClassifier(model="course_small"))
    assert (frozen.precision, tuned.precision, scratch.precision) == ("float32", "mixed_bfloat16", "mixed_bfloat16")
    monkeypatch.setattr(precisions, "cpu_has_bf16", lambda: False)
    assert resolve(ImageClassifier(model="course_small")).precision == "float32"
