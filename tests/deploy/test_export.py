"""Exports (SavedModel, ONNX, TFLite float and int8) run in their own runtimes and agree with the Keras model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli

from imgclf import ImgclfError
from imgclf.deploy.export import export_run
from imgclf.deploy.runtime import FORMATS, ExportedModel, open_predictor, require
from imgclf.predict.items import predict_items


@pytest.fixture(scope="module")
def run(tmp_path_factory, trained_runs):
    return trained_runs.squares(tmp_path_factory.mktemp("export"))


@pytest.mark.parametrize("format", sorted(FORMATS))
def test_float_exports_agree_with_keras(run, format):
    record = export_run(run, format)
    check = record["parity"]
    assert check["images"] == 8 and check["top1_agreement"] == 1.0 and check["max_probability_difference"] < 1e-4
    folder = run / "export" / format
    assert json.loads((folder / "export.json").read_text())["parity"] == check
    signature = json.loads((folder / "signature.json").read_text())
    assert signature["input"] == {
        "shape": [None, 32, 32, 3],
        "dtype": "uint8",
        "meaning": signature["input"]["meaning"],
    }
    assert signature["classes"] == ["a_tl", "b_br"] and "probability of 'b_br'" in signature["output"]["meaning"]
    assert check["unknown_agreement"] == 1.0 and check["max_ood_score_difference"] < 1e-3
    assert check["near_threshold"] >= 0 and check["unknown_band"] > 0
    assert signature["features"]["shape"] == [None, 512] and signature["ood"]["method"] == "knn"
    assert signature["ood"]["threshold"] == pytest.approx(open_predictor(run).ood.thresholds["knn"])
    assert (folder / "ood.npz").is_file() and signature["calibration"]["temperature"] == 1.0
    exported = open_predictor(record["path"])  # predict from the exported file, as `imgclf predict` does
    keras_side = open_predictor(run)
    from imgclf.predict.predictor import ScoresFeatures, ScoringModel

    assert isinstance(exported.model, ScoringModel) and isinstance(keras_side.model, ScoringModel)  # one Protocol
    assert isinstance(exported.model, ScoresFeatures) and not isinstance(keras_side.model, ScoresFeatures)
    images = sorted((run.parent / "data" / "b_br").glob("*.png"))[:5]
    images += [_disc(run.parent / f"disc{format}.png")]  # unlike both classes
    got, want = exported.predict(images), keras_side.predict(images)
    got, got_scores, want, want_scores = got.probabilities, got.ood_score, want.probabilities, want.ood_score
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-3)  # the same "unknown" from the export
    assert got_scores[-1] > got_scores[:-1].max()
    records = predict_items(exported, images)
    clear = np.abs(want_scores - keras_side.ood.thresholds[keras_side.ood.method]) > check["unknown_band"]
    assert [r["unknown"] for r, c in zip(records, clear) if c] == [
        r["unknown"] for r, c in zip(predict_items(keras_side, images), clear) if c
    ]  # the same answers, but for a score on the threshold, where float rounding may go either way
    assert records[-1]["unknown"] is True


def test_export_never_writes_into_a_folder_that_holds_anything(run, tmp_path, monkeypatch, capsys):
    other = tmp_path / "other_run"  # another run's files, where a careless --out points
    other.mkdir()
    (other / "classes.json").write_text('["x", "y", "z"]')
    (other / "ood.npz").write_bytes(b"theirs")
    code, _, err = run_cli(monkeypatch, capsys, "export", run, "--format", "tflite", "--out", other)
    assert code == 2 and "out must be a new or empty folder" in err and "not empty" in err
    assert (other / "classes.json").read_text() == '["x", "y", "z"]' and (other / "ood.npz").read_bytes() == b"theirs"
    assert sorted(p.name for p in other.iterdir()) == ["classes.json", "ood.npz"]  # no staging folder left either
    afile = tmp_path / "model.tflite"
    afile.write_bytes(b"mine")
    code, _, err = run_cli(monkeypatch, capsys, "export", run, "--format", "tflite", "--out", afile)
    assert code == 2 and "a file" in err and afile.read_bytes() == b"mine"


def test_parity_counts_no_disagreement_inside_the_band_around_the_threshold():
    from imgclf.deploy.export import ood_parity
    from imgclf.unknown.detector import OodDetector

    class Fixed(OodDetector):  # scores are the first feature: the check sees only scores and the threshold
        def scores(self, features, method=None):
            return np.asarray(features)[:, 0]

    detector = Fixed.__new__(Fixed)
    detector.method, detector.thresholds = "knn", {"knn": 0.5}
    keras_side = np.array([[0.1], [0.49999], [0.9], [0.3]], np.float32)
    exported = np.array([[0.1], [0.50001], [0.9], [0.7]], np.float32)  # rounding across the threshold; one real flip
    check = ood_parity(detector, keras_side, exported)
    assert check["unknown_agreement"] == 0.75 and check["near_threshold"] == 1
    assert check["max_ood_score_difference"] == pytest.approx(0.4)


def _disc(path):
    """A filled grey disc on white: neither class (squares in a corner)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (40, 40), "white")
    ImageDraw.Draw(image).ellipse((6, 6, 34, 34), fill=(90, 160, 40))
    image.save(path)
    return path


def test_int8_tflite_is_smaller_and_mostly_agrees(run):
    record = export_run(run, "tflite", quantize="int8")
    assert record["quantize"] == "int8" and record["parity"]["top1_agreement"] >= 0.75
    float_size = export_run(run, "tflite", out=run / "export" / "f")["bytes"]
    assert record["bytes"] < float_size / 2  # weights stored as int8
    model = ExportedModel(record["path"])
    assert model(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 1)
    probabilities, features = model.outputs(np.zeros((2, 32, 32, 3), np.uint8))  # int8 keeps the features output
    assert features.shape == (2, 512) and record["parity"]["unknown_agreement"] >= 0.75


def test_cli_export_then_predict_and_evaluate_the_file(run, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "export", run, "--format", "onnx", "--out", run / "onnx")
    assert code == 0 and "top-1 agreement 1.0000" in err and out.strip().endswith("model.onnx")
    image = sorted((run.parent / "data" / "a_tl").glob("*.png"))[0]
    code, from_file, _ = run_cli(monkeypatch, capsys, "predict", run / "onnx" / "model.onnx", image)
    code2, from_run, _ = run_cli(monkeypatch, capsys, "predict", run, image)
    assert code == code2 == 0 and from_file.split("\t")[1] == from_run.split("\t")[1]
    assert float(from_file.split("\t")[2]) == pytest.approx(float(from_run.split("\t")[2]), abs=1e-4)
    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", run / "onnx" / "model.onnx", run.parent / "data")
    assert code == 0 and (run / "onnx" / "evaluations" / "data" / "metrics.json").is_file()


def test_errors_name_the_problem(run, monkeypatch):
    with pytest.raises(ImgclfError, match="format must be one of"):
        export_run(run, "coreml")
    with pytest.raises(ImgclfError, match="applies to the tflite format"):
        export_run(run, "onnx", quantize="int8")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(ImgclfError, match=r"pip install 'imgclf\[export\]'"):
        require("onnx")
    with pytest.raises(ImgclfError, match="run folder or a model written by `imgclf export`"):
        open_predictor(run / "classes.json")


def test_predicting_from_tflite_or_onnx_needs_no_tensorflow(run):
    """An exported file is predicted in its own runtime: the CLI never imports TensorFlow for it (fast start)."""
    import subprocess
    import sys

    tflite = export_run(run, "tflite", out=run / "export" / "tf-free")["path"]
    image = sorted((run.parent / "data" / "b_br").glob("*.png"))[0]
    script = (
        "import sys\nfrom imgclf import cli\nsys.argv = ['imgclf', 'predict', sys.argv[1], sys.argv[2]]\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, tflite, str(image)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "TF False False", done.stderr[-2000:]
    assert lines[0].split("\t")[1] in ("a_tl", "b_br")


def test_a_run_without_detector_exports_probabilities_only(tmp_path):
    from helpers import write_class_folder

    from imgclf import ImageClassifier

    data = write_class_folder(tmp_path / "data", {"a_tl": 12, "b_br": 12}, size=40)
    run = tmp_path / "run"
    ImageClassifier(model="course_small", target_size=(32, 32), epochs=1, batch_size=8, calibrate=False).fit(
        data, run_dir=run, verbose=0
    )
    earlier = run / "export" / "onnx" / "ood.npz"  # an earlier export's folder: kept, the new one goes beside it
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"old")
    record = export_run(run, "onnx")
    assert record["path"] == str(run / "export" / "onnx-2" / "model.onnx") and earlier.read_bytes() == b"old"
    signature = json.loads((run / "export" / "onnx-2" / "signature.json").read_text())
    assert "ood" not in signature and "features" not in signature
    assert not (run / "export" / "onnx-2" / "ood.npz").exists()
    assert "unknown_agreement" not in record["parity"] and ExportedModel(record["path"]).n_outputs == 1
    records = predict_items(open_predictor(record["path"]), sorted((data / "a_tl").glob("*.png"))[:2])
    assert all("unknown" not in r and r["label"] in ("a_tl", "b_br") for r in records)


@pytest.fixture(scope="module")
def exported(run):
    return export_run(run, "tflite", out=run / "export" / "tamper-source")["path"]


def _tampered_npz(source, **changes):
    with np.load(source, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    return arrays


@pytest.mark.parametrize(
    ("case", "message"),
    [("huge_size", "is not the model's input"), ("three_classes", "class_mode binary needs two classes"),
     ("filter", "interpolation must be one of"), ("not_json", "cannot read"), ("k_zero", "k must be in"),
     ("nan_threshold", "threshold must be a finite number"), ("narrow_reference", "do not match the kernel"),
     ("wide_kernel", "does not fit the model"), ("html_model", "cannot load the exported model")],
)  # fmt: skip
def test_a_tampered_export_is_refused_with_the_reason(exported, tmp_path, monkeypatch, capsys, case, message):
    import shutil
    from pathlib import Path

    folder = tmp_path / "export"
    shutil.copytree(Path(exported).parent, folder)
    signature = json.loads((folder / "signature.json").read_text())
    ood = folder / "ood.npz"
    if case == "huge_size":
        signature["target_size"] = [100000, 100000]  # allocated until killed, once
    elif case == "three_classes":
        signature["classes"] = ["a", "b", "c"]
    elif case == "filter":
        signature["interpolation"] = "sharpest"
    elif case == "html_model":
        (folder / "model.tflite").write_bytes(b"<!doctype html><html>404</html>")
    arrays = _tampered_npz(ood)
    if case == "k_zero":
        arrays["k"] = np.array(0)
    elif case == "nan_threshold":
        arrays["thresholds"] = np.full_like(arrays["thresholds"], np.nan)
    elif case == "narrow_reference":
        arrays["reference"] = arrays["reference"][:, :10]
    elif case == "wide_kernel":  # a detector of another model: 3 classes over the same features
        arrays["kernel"], arrays["bias"] = np.zeros((512, 3), np.float32), np.zeros(3, np.float32)
    np.savez(ood, **arrays)
    (folder / "signature.json").write_text("{not json" if case == "not_json" else json.dumps(signature))
    image = sorted((Path(exported).parents[3] / "data" / "a_tl").glob("*.png"))[0]
    code, _, err = run_cli(monkeypatch, capsys, "predict", folder / "model.tflite", image)
    assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err, err[-2000:]


SIGNATURE_KEYS = ["classes", "class_mode", "target_size", "color_mode", "interpolation", "features", "ood", "input"]


def test_fuzz_signature_files(exported, tmp_path_factory):
    """Any value under any key of signature.json: the export opens, or one ImgclfError says why; nothing else."""
    import shutil
    from pathlib import Path

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    leaves = st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats() | st.text(max_size=10)
    value = st.recursive(
        leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    )
    source = Path(exported).parent

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(key=st.sampled_from(SIGNATURE_KEYS), value=value)
    def check(key, value):
        folder = tmp_path_factory.mktemp("sig")
        shutil.copytree(source, folder, dirs_exist_ok=True)
        signature = json.loads((folder / "signature.json").read_text())
        signature[key] = value
        (folder / "signature.json").write_text(json.dumps(signature))
        try:
            open_predictor(folder / "model.tflite")
        except ImgclfError:
            pass

    check()


def test_a_reader_taking_the_first_output_gets_the_probabilities(run):
    """Outside imgclf, output 0 is the probabilities in every format: ONNX by position and name, TFLite through the
    signature runner (keys output_0, output_1) and its raw tensor list alike."""
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    images = np.zeros((2, 32, 32, 3), np.uint8)
    onnx_path = export_run(run, "onnx", out=run / "export" / "reader-onnx")["path"]
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["probabilities", "features"]
    first = session.run(None, {session.get_inputs()[0].name: images})[0]
    assert first.shape == (2, 1) and ((first >= 0) & (first <= 1)).all()
    tflite_path = export_run(run, "tflite", out=run / "export" / "reader-tflite")["path"]
    interpreter = Interpreter(tflite_path)
    runner = interpreter.get_signature_runner()
    outputs = {k: np.array(v) for k, v in runner(**{next(iter(runner.get_input_details())): images}).items()}
    assert outputs["output_0"].shape == (2, 1) and outputs["output_1"].shape == (2, 512)
    del runner
    plain = Interpreter(tflite_path)  # as a reader who never heard of signatures
    plain.allocate_tensors()
    shapes = [tuple(d["shape"][1:]) for d in plain.get_output_details()]
    assert shapes[0] == (1,), shapes  # the raw list too: a reader taking output 0 gets the probabilities
    signature = json.loads((run / "export" / "reader-onnx" / "signature.json").read_text())
    assert signature["output"]["name"] == "probabilities" and signature["features"]["name"] == "features"
