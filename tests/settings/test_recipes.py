"""Recipes, the modern models, optimizers/schedules/label smoothing, resize defaults, and the learning-rate
range test."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from helpers import run_cli, write_class_folder
from PIL import Image

from imgclf import ImageClassifier
from imgclf.errors import ImgclfError
from imgclf.recipes import effective_settings, get_recipe, list_recipes, parse_recipe

# -- recipes: loading, overriding, recording ------------------------------------------------------------------


def test_shipped_recipes_load_and_resolve():
    recipes = {r.name: r for r in list_recipes()}
    assert {"fast", "course", "squeezenet"} <= set(recipes)
    for recipe in recipes.values():
        assert recipe.version >= 1 and recipe.description
        resolved = ImageClassifier(recipe=recipe.name).resolve_settings()
        assert (resolved.recipe, resolved.recipe_version) == (recipe.name, recipe.version)
        for name, value in recipe.settings.items():  # every value the recipe sets is what the run resolves to
            got = getattr(resolved, name, None)
            if name == "augment":
                got, value = got, __import__("imgclf").pipeline.augment.make_augmentation(value)
            if name in ("model", "backbone", "interpolation", "optimizer", "lr_schedule", "head", "batch_size"):
                assert got == value, name


def test_fast_recipe_sets_the_modern_settings_and_flags_override_it():
    fast = get_recipe("fast").settings
    resolved = ImageClassifier(recipe="fast").resolve_settings()
    assert resolved.model == fast["model"] and resolved.optimizer == "adamw"
    assert resolved.label_smoothing == fast["label_smoothing"] > 0
    assert resolved.lr_schedule == "cosine" and resolved.warmup_epochs == fast["warmup_epochs"]
    # Given settings win, even when they are the built-in defaults (rmsprop, no smoothing, nearest).
    over = ImageClassifier(recipe="fast", optimizer="rmsprop", label_smoothing=0.0, interpolation="nearest",
                           epochs=3).resolve_settings()  # fmt: skip
    assert (over.optimizer, over.label_smoothing, over.interpolation, over.epochs) == ("rmsprop", 0.0, "nearest", 3)
    assert over.learning_rate == fast["learning_rate"] and over.model == fast["model"]  # the rest stays the recipe's


def test_recipe_errors_name_the_bad_value():
    with pytest.raises(ImgclfError, match="recipe must be one of .*Received: 'fastest'"):
        ImageClassifier(recipe="fastest").resolve_settings()
    with pytest.raises(ImgclfError, match=r"recipe must be one of .*Received: \['fast'\]"):  # a YAML list
        ImageClassifier(recipe=["fast"]).resolve_settings()
    with pytest.raises(ImgclfError, match="sets 'cache'; a recipe may set only"):
        parse_recipe("name: x\nversion: 1\ndescription: d\nsettings: {cache: memory}\n", "x.yaml")
    with pytest.raises(ImgclfError, match="version must be a positive int. Received: 0"):
        parse_recipe("name: x\nversion: 0\ndescription: d\n", "x.yaml")
    with pytest.raises(ImgclfError, match="must be a mapping with name, version and description"):
        parse_recipe("- a\n- b\n", "x.yaml")


def test_effective_settings_order_given_then_recipe_then_fallback():
    values = effective_settings({"recipe": "course", "epochs": 2, "optimizer": None, "label_smoothing": None})
    assert values["epochs"] == 2  # given
    assert values["model"] == "chollet" and values["learning_rate"] == 1e-4  # the recipe's
    assert values["label_smoothing"] == 0.0  # the fallback


def test_run_records_recipe_and_resolved_values(tmp_path, monkeypatch, capsys):
    data = write_class_folder(tmp_path / "d", {"a_tl": 12, "b_br": 12}, size=40)
    code, out, err = run_cli(monkeypatch, capsys, "train", data, "--recipe", "fast", "--epochs", "3",
                             "--target-size", "32", "32", "--validation-split", "0.25", "--runs-dir", tmp_path / "runs",
                             "--name", "r", "--no-calibrate")  # fmt: skip
    assert code == 0, err
    assert "Recipe fast (version 1): resnet_small at 32x32, adamw" in err
    import yaml

    record = yaml.safe_load((tmp_path / "runs" / "r" / "config.yaml").read_text())
    assert record["recipe"] == "fast" and record["optimizer"] is None  # as given
    resolved = record["resolved"]
    assert resolved["recipe"] == {"name": "fast", "version": get_recipe("fast").version}
    assert resolved["optimizer"] == "adamw" and resolved["lr_schedule"] == "cosine"
    assert resolved["label_smoothing"] == get_recipe("fast").settings["label_smoothing"]
    assert resolved["interpolation"] == "bilinear" and resolved["epochs"] == 3
    recipe_augment = get_recipe("fast").settings["augment"]  # the recipe's augmentation, though no flag was typed
    assert resolved["augment"] == {**recipe_augment, "zoom_range": [0.8, 1.2]} and "Augmenting training images" in err
    # What imgclf wrote for users loads without imgclf.
    model = keras.saving.load_model(tmp_path / "runs" / "r" / "model.keras", safe_mode=True)
    assert [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    clf = ImageClassifier.load(tmp_path / "runs" / "r")
    assert clf.interpolation_ == "bilinear" and clf.predict([data / "a_tl" / "000.png"]).shape == (1,)
    code, out, _ = run_cli(monkeypatch, capsys, "recipes")
    assert code == 0 and "fast" in out and "course" in out


def test_cli_augmentation_flags_refine_the_recipes_never_replace_it():
    from imgclf.cli._settings import AUG_FLAGS
    from imgclf.cli.train import _classifier
    from imgclf.pipeline.augment import make_augmentation

    untyped = {k: None for k in AUG_FLAGS}

    def augment(settings, **typed):
        clf, _ = _classifier("DATA", None, {**settings, **untyped, **typed})
        return clf.resolve_settings().augment

    for name in ("fast", "squeezenet", "course"):
        assert augment({"recipe": name}) == make_augmentation(get_recipe(name).settings["augment"]), name
    refined = augment({"recipe": "fast"}, rotation_range=5.0)
    assert refined.rotation_range == 5 and refined.horizontal_flip and refined.fill_mode == "reflect"
    squeezed = augment({"recipe": "squeezenet"}, vertical_flip=True)
    assert squeezed.vertical_flip and squeezed.horizontal_flip and squeezed.jpeg_quality_range == (50, 95)
    assert augment({"recipe": "fast", "augment": "none"}).is_identity  # a preset given replaces the recipe's
    assert augment({}).is_identity and augment({}, horizontal_flip=True).changes() == {"horizontal_flip": True}


@pytest.mark.parametrize(
    ("kwargs", "head"),
    [({"backbone": "squeezenet1_1"}, "gap"), ({"backbone": "mobilenet_v2"}, "gap"),
     ({"backbone": "inception_v3"}, "course"), ({"backbone": "squeezenet1_1", "head": "course"}, "course")],
)  # fmt: skip
def test_each_backbone_gets_its_own_default_head(kwargs, head):
    assert ImageClassifier(**kwargs).resolve_settings().head == head


# -- resize defaults by model family ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({}, "nearest"), ({"model": "chollet"}, "nearest"), ({"model": "resnet_small"}, "bilinear"),
     ({"model": "mini_xception"}, "bilinear"), ({"backbone": "squeezenet1_1"}, "bilinear"),
     ({"backbone": "squeezenet1_1", "interpolation": "nearest"}, "nearest")],
)  # fmt: skip
def test_interpolation_defaults_by_model_family(kwargs, expected):
    assert ImageClassifier(**kwargs).resolve_settings().interpolation == expected


# -- modern models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet_small", "mini_xception"])
def test_modern_models_build_train_and_load_in_plain_keras(name, tmp_path):
    from imgclf.models import count_parameters, create_model, get_model_spec

    spec = get_model_spec(name)
    model = create_model(name, (*spec.default_target_size, 3), 3, "categorical")
    assert model.count_params() == count_parameters(name, 3) and 1e5 < model.count_params() < 2e6
    images = np.random.default_rng(0).integers(0, 256, (4, *spec.default_target_size, 3), dtype=np.uint8)
    proba = model.predict(images, verbose=0)
    assert proba.shape == (4, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict(images, verbose=0), proba, atol=1e-6)


def test_models_command_lists_parameters_and_resize(monkeypatch, capsys):
    from imgclf.models import count_parameters

    code, out, _ = run_cli(monkeypatch, capsys, "models")
    assert code == 0
    line = next(line for line in out.splitlines() if "resnet_small" in line)
    assert "bilinear" in line and f"{count_parameters('resnet_small'):,}" in line
    assert f"{count_parameters('course_small'):,}" in out and "9,494,561" in out


# -- optimizers, schedules, label smoothing ---------------------------------------------------------------------


def test_learning_rate_schedules():
    from imgclf.training.optimizers import learning_rate_schedule

    assert learning_rate_schedule(0.01, "constant", 100) == 0.01
    cosine = learning_rate_schedule(0.01, "cosine", 100, warmup_steps=10)
    at = lambda step: float(cosine(step))  # noqa: E731
    assert at(0) == pytest.approx(0.001) and at(5) == pytest.approx(0.0055)  # linear warm-up from a tenth
    assert at(10) == pytest.approx(0.01) and at(55) == pytest.approx(0.005, rel=1e-3)  # half way down the cosine
    assert at(100) == pytest.approx(0.0, abs=1e-9)
    flat = learning_rate_schedule(0.01, "constant", 100, warmup_steps=10)
    assert float(flat(0)) == pytest.approx(0.001) and float(flat(60)) == pytest.approx(0.01)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(cosine))
    assert float(restored(55)) == pytest.approx(at(55))  # saved with the optimizer, resumed along it


def test_optimizer_weight_decay_and_label_smoothing_settings():
    resolved = ImageClassifier(optimizer="adamw").resolve_settings()
    assert resolved.weight_decay == 0.004  # Keras' AdamW default
    assert ImageClassifier(optimizer="adam").resolve_settings().weight_decay is None
    assert ImageClassifier(optimizer="adamw", weight_decay=0).resolve_settings().weight_decay is None
    from imgclf.training.optimizers import make_optimizer
    from imgclf.training.trainer import make_loss

    opt = make_optimizer("adamw", 1e-3, 0.05)
    assert isinstance(opt, keras.optimizers.AdamW) and opt.weight_decay == 0.05
    loss = make_loss("binary", 0.1)
    # Smoothed binary targets 0 -> 0.05: the loss of predicting exactly 0.05 is the minimum.
    y = np.zeros((1, 1), np.float32)
    values = [float(loss(y, np.full((1, 1), p, np.float32))) for p in (0.01, 0.05, 0.2)]
    assert values[1] < values[0] and values[1] < values[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"label_smoothing": 0.1, "class_mode": "sparse"}, "label_smoothing needs class_mode binary"),
     ({"label_smoothing": 1.0}, r"label_smoothing must be a number in \[0, 1\). Received: 1.0"),
     ({"lr_schedule": "step"}, "lr_schedule must be one of"),
     ({"lr_schedule": "cosine", "reduce_lr": 3}, "reduce_lr needs a constant learning rate"),
     ({"warmup_epochs": 5, "epochs": 5}, r"warmup_epochs must be fewer than epochs \(5\). Received: 5"),
     ({"weight_decay": -1}, r"weight_decay must be a number in \[0, 1\). Received: -1"),
     ({"optimizer": "lamb"}, "optimizer must be one of")],
)  # fmt: skip
def test_training_setting_errors(kwargs, message):
    with pytest.raises(ImgclfError, match=message):
        ImageClassifier(**kwargs).resolve_settings()


# -- learning-rate range test ----------------------------------------------------------------------------------


def test_suggest_finds_the_steepest_descent():
    from imgclf.training.lr_find import smooth, suggest

    lrs = np.logspace(-6, 0, 200)
    centre = 1e-3
    losses = 1.0 - 0.8 / (1.0 + np.exp(-4 * (np.log10(lrs) - np.log10(centre))))  # falls fastest at centre
    steepest, minimum = suggest(lrs, losses)
    assert steepest == pytest.approx(centre, rel=0.1)
    assert minimum == pytest.approx(lrs[-1])
    assert smooth(np.ones(50)) == pytest.approx(np.ones(50))  # bias-corrected: no ramp from 0


def test_lr_find_on_generated_images(tmp_path, monkeypatch, capsys):
    data = write_class_folder(tmp_path / "d", {"a_tl": 32, "b_br": 32}, size=40)
    clf = ImageClassifier(model="course_small", target_size=(32, 32), batch_size=8, validation_split=0.0)
    result = clf.lr_find(data, start_lr=1e-6, end_lr=10.0, steps=80, plot=tmp_path / "lr.png")
    assert not hasattr(clf, "model_")  # the classifier stays unfitted
    lrs, smoothed = result.learning_rates, result.smoothed
    assert 1e-6 <= result.suggestion <= 10.0 and len(lrs) == len(result.losses) >= 20
    assert np.all(np.diff(np.log(lrs)) > 0)  # an exponential sweep
    # The suggestion is where the smoothed loss falls fastest, and the loss does fall there.
    slope = np.gradient(smoothed, np.log(lrs))
    at = int(np.argmin(np.abs(lrs - result.suggestion)))
    n = len(lrs)
    assert slope[at] == pytest.approx(slope[n // 10 : n - n // 10].min())
    assert slope[at] < 0 and smoothed[min(at + n // 10, n - 1)] < smoothed[max(at - n // 10, 0)]
    with Image.open(tmp_path / "lr.png") as im:
        assert im.size[0] > 300
    code, out, err = run_cli(monkeypatch, capsys, "lr-find", data, "--model", "course_small", "--target-size", "32",
                             "32", "--batch-size", "8", "--steps", "40", "--start-lr", "1e-5", "--out",
                             tmp_path / "cli.png")  # fmt: skip
    assert code == 0, err
    rate = float(out.split("Suggested learning rate:")[1].split()[0])
    assert 1e-5 <= rate <= 10 and math.isfinite(rate) and (tmp_path / "cli.png").is_file()
    with pytest.raises(ImgclfError, match="start_lr and end_lr must satisfy 0 < start_lr < end_lr"):
        clf.lr_find(data, start_lr=1.0, end_lr=0.1)


def test_backbones_command_says_each_default_head(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(monkeypatch, capsys, "backbones")
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert code == 0 and rows["inception_v3"].rstrip("│ ").endswith("course")
    assert rows["squeezenet1_1"].rstrip("│ ").endswith("gap") and rows["mobilenet_v2"].rstrip("│ ").endswith("gap")
