"""Every setting declares what its value may be, and resolution checks it from that declaration
(``imgclf.settings.constraints``, as scikit-learn's ``_parameter_constraints``)."""

from __future__ import annotations

import pytest

from imgclf import ImageClassifier, settings
from imgclf.errors import ImgclfError
from imgclf.settings.constraints import AnyOf, Interval, Options


def test_intervals_say_what_they_allow_and_name_the_value():
    assert Interval(float, 0, 1, "left").check("dropout", 0) == 0.0
    with pytest.raises(ImgclfError, match=r"^dropout must be a number in \[0, 1\)\. Received: 1$"):
        Interval(float, 0, 1, "left").check("dropout", 1)
    with pytest.raises(ImgclfError, match=r"^epochs must be a positive int\. Received: 2\.5$"):
        Interval(int, 1, None).check("epochs", 2.5)
    with pytest.raises(ImgclfError, match="seed must be a non-negative int. Received: True"):
        Interval(int, 0, None).check("seed", True)  # a bool is never a number
    with pytest.raises(ImgclfError, match="learning_rate must be a positive float. Received: inf"):
        Interval(float, 0, None, "neither").check("learning_rate", float("inf"))
    assert Interval(float, 0, 1, "right").check("target_accuracy", 1) == 1.0


def test_options_aliases_and_any_of():
    cache = Options("auto", "memory", "disk", "none", aliases={True: "memory", "true": "memory"})
    assert cache.check("cache", True) == "memory" and cache.check("cache", "TRUE") == "memory"
    with pytest.raises(ImgclfError, match=r"cache must be one of \['auto', 'memory', 'disk', 'none'\]\. Received: 1"):
        cache.check("cache", 1)  # 1 == True, but not the alias
    with pytest.raises(ImgclfError, match="Received: \\['memory'\\]"):
        cache.check("cache", ["memory"])  # unhashable
    weight = AnyOf(Options("balanced"), dict)
    assert weight.check("class_weight", {0: 2.0}) == {0: 2.0} and weight.check("class_weight", "balanced")
    with pytest.raises(ImgclfError, match="class_weight must be 'balanced' or a mapping. Received: 'even'"):
        weight.check("class_weight", "even")
    with pytest.raises(ImgclfError, match="calibrate must be true or false. Received: 1"):
        settings.check_setting("calibrate", 1)


def test_every_choice_is_the_one_its_implementation_knows():
    from imgclf.data.images import COLOR_MODES, INTERPOLATIONS
    from imgclf.training.optimizers import OPTIMIZERS

    assert settings.constraint("optimizer").values == tuple(OPTIMIZERS)
    assert settings.constraint("interpolation").values == tuple(INTERPOLATIONS)
    assert set(settings.constraint("color_mode").values) == set(COLOR_MODES)
    assert settings.constraint("head").values == settings.HEADS


@pytest.mark.parametrize(
    ("name", "bad"),
    [("dropout", 1.5), ("epochs", 0), ("batch_size", -1), ("seed", -1), ("optimizer", "lamb"), ("cache", "ram"),
     ("ood_false_alarm_rate", 1), ("monitor", "loss"), ("distribute", "tpu"), ("fine_tune_schedule", "step"),
     ("calibrate", "yes"), ("class_weight", [1, 2]), ("precision", "float16"), ("target_accuracy", 0)],
)  # fmt: skip
def test_resolution_checks_every_declared_setting(name, bad):
    with pytest.raises(ImgclfError, match=f"^{name} must be .*Received: "):
        ImageClassifier(**{name: bad}).resolve_settings()


def test_resolved_settings_are_recorded_as_they_are():
    resolved = ImageClassifier(optimizer="adamw", early_stopping=3, seed=7).resolve_settings()
    record = resolved.to_record("binary")
    assert record["weight_decay"] == settings.ADAMW_WEIGHT_DECAY  # derived: AdamW's default
    assert record["early_stopping"] == 3 and record["seed"] == 7 and record["class_mode"] == "binary"
    assert record["target_size"] == [150, 150] and "head" not in record  # no backbone, no head
    from imgclf.training.trainer import TrainingConfig

    config = TrainingConfig.of(resolved, "binary")
    assert (config.optimizer, config.early_stopping, config.seed) == ("adamw", 3, 7)
