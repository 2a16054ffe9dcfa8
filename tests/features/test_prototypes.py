"""The few-shot head: class prototypes as the output layer's kernel, from one image a class up."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SHARED, run_cli, write_colour_classes

from imgclf.features.prototypes import SCALE, class_prototypes, prototype_weights

SQUEEZENET = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_prototypes_are_normalised_class_means_and_binary_matches_softmax():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(9, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2])
    protos = class_prototypes(vectors, labels, 3)
    mean1 = vectors[3:7].mean(axis=0)
    assert np.allclose(protos[1], mean1 / np.linalg.norm(mean1), atol=1e-6)
    kernel, bias = prototype_weights(protos, "categorical")
    assert kernel.shape == (4, 3) and not bias.any()
    assert np.allclose(vectors @ kernel, SCALE * vectors @ protos.T, atol=1e-5)  # scaled cosine similarities
    two = protos[:2]
    k2, b2 = prototype_weights(two, "binary")
    sigmoid = 1 / (1 + np.exp(-(vectors @ k2 + b2)))[:, 0]
    assert np.allclose(sigmoid, _softmax(SCALE * vectors @ two.T)[:, 1], atol=1e-5)
    with pytest.raises(Exception, match="at least 1 training image of every class. Received: none of 'class 1'"):
        class_prototypes(vectors, np.array([0, 0, 0, 0, 0, 0, 0, 2, 2]), 3)
    with pytest.raises(Exception, match=r"none of 'dog', 'owl' \(add pictures"):  # named, never by index
        class_prototypes(vectors, np.zeros(9, int), 3, class_names=["cat", "dog", "owl"])


def _few_shot_run(tmp_path, monkeypatch, capsys, per_class: int):
    """``imgclf train DATA --head prototypes`` on ``per_class`` red and blue textures a class (``runs/few``):
    ``(pool of the other textures, exit code, stderr)``."""
    pool = write_colour_classes(tmp_path / "pool", count=12)
    data = tmp_path / "data"
    for name in ("red", "blue"):
        (data / name).mkdir(parents=True)
        for path in sorted((pool / name).glob("*.png"))[:per_class]:
            path.rename(data / name / path.name)
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--backbone", "squeezenet1_1", "--weights", SQUEEZENET,
                           "--head", "prototypes", "--runs-dir", tmp_path / "runs", "--name", "few")  # fmt: skip
    return pool, code, err


@pytest.mark.skipif(not SQUEEZENET.is_file(), reason="needs ../shared/weights (SqueezeNet ImageNet weights)")
def test_one_image_a_class_classifies_held_out_pictures(tmp_path, monkeypatch, capsys):
    from imgclf.predict.predictor import Predictor

    pool, code, err = _few_shot_run(tmp_path, monkeypatch, capsys, per_class=1)  # one picture a class
    assert code == 0, err
    assert "Prototypes from 2 images (1 to 1 a class)" in " ".join(err.split())
    predictor = Predictor.from_run(tmp_path / "runs" / "few")
    held_out = sorted(pool.glob("*/*.png"))
    got = predictor.predict(held_out).labels()
    assert [p.parent.name for p in held_out] == list(got)  # all 22 held-out pictures right
    # no validation images: the fast copy is checked on the training images, and predict takes it
    from imgclf.deploy.fast import choose_engine, fast_record, passed

    record = fast_record(tmp_path / "runs" / "few")
    assert passed(record) and record["parity"]["images"] == 2 and "(training" in record["data"]
    assert "2 training images, top-1 agreement 1.000" in " ".join(err.split())
    model, note = choose_engine(tmp_path / "runs" / "few")
    assert model is not None and model.name == "model.tflite" and note is None


def test_prototypes_refusals_are_one_line(tmp_path, monkeypatch, capsys):
    data = write_colour_classes(tmp_path / "data", count=3)
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--head", "prototypes")
    assert code == 2 and "needs a pretrained backbone" in err and "Traceback" not in err
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--backbone", "squeezenet1_1", "--weights", "none",
                           "--head", "prototypes", "--augment", "course")  # fmt: skip
    assert code == 2 and "give no augmentation" in err
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--backbone", "squeezenet1_1", "--weights", "none",
                           "--head", "prototypes", "--fine-tune", "3")  # fmt: skip
    assert code == 2 and "no fine_tune" in err


@pytest.mark.skipif(not SQUEEZENET.is_file(), reason="needs ../shared/weights (SqueezeNet ImageNet weights)")
def test_train_says_when_unknown_rests_on_too_few_validation_images(tmp_path, monkeypatch, capsys):
    _, code, err = _few_shot_run(tmp_path, monkeypatch, capsys, per_class=5)  # five a class: one held out
    assert code == 0, err
    said = " ".join(err.split())
    assert '"unknown" rests on 2 validation image(s): expect about 1 in 3 ordinary pictures' in said
