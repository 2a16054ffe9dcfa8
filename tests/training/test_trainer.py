"""The trainer's phases (imgclf.training.trainer.train) on small real-pixel datasets, without the CLI or the
estimator: the first phase alone, a head trained on the backbone's features, the fine-tuning phase after it (a
tenth of the rate, cosine-annealed, the history running on), a stop at the target accuracy that skips fine-tuning,
and Ctrl-C recorded in the run folder."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import square_image

from imgclf.models.transfer import create_transfer_model, split_at_features
from imgclf.training.trainer import (
    TrainingConfig,
    TrainingData,
    compile_model,
    fine_tune_learning_rate,
    make_loss,
    train,
)

SIZE = 32


def _data(n: int = 32) -> TrainingData:
    """Squares in the top-left (0) or bottom-right (1) corner, uint8 (n, 32, 32, 3), half of each; 8 for validation."""
    labels = np.arange(n) % 2
    images = np.stack([np.asarray(square_image("br" if y else "tl", SIZE, 900 + i)) for i, y in enumerate(labels)])
    targets = labels.astype(np.float32)[:, None]

    def batches(x, y, shuffle):
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        return (ds.shuffle(len(x), seed=0) if shuffle else ds).batch(8)

    train_x, train_y = images[8:], targets[8:]
    return TrainingData(train=batches(train_x, train_y, True), validation=batches(images[:8], targets[:8], False),
                        train_in_order=batches(train_x, train_y, False), labels=labels[8:], num_classes=2,
                        class_names=("a_tl", "b_br"))  # fmt: skip


def _config(**changes) -> TrainingConfig:
    base = dict(epochs=2, batch_size=8, optimizer="adam", learning_rate=1e-3, class_mode="binary", seed=0)
    return TrainingConfig(**{**base, **changes})


def _transfer_model(config: TrainingConfig) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = create_transfer_model("squeezenet1_1", (SIZE, SIZE, 3), 2, "binary", weights=None, head="gap")
    return compile_model(model, config, config.first_learning_rate(24))


def _small_net(*middle) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for layer in middle:
        x = layer(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


def test_losses_epochs_and_the_fine_tuning_rate():
    assert isinstance(make_loss("binary"), keras.losses.BinaryCrossentropy)
    assert make_loss("categorical", 0.1).get_config()["label_smoothing"] == pytest.approx(0.1)
    assert isinstance(make_loss("sparse", 0.1), keras.losses.SparseCategoricalCrossentropy)  # no smoothing there
    assert _config().total_epochs == 2 and _config(fine_tune=3, fine_tune_epochs=5).total_epochs == 7
    assert _config(fine_tune_from="fire8").total_epochs == 4  # fine-tuning for as many epochs by default
    assert isinstance(_config().first_learning_rate(24), float)
    warm = _config(lr_schedule="cosine", warmup_epochs=1).first_learning_rate(24)
    assert float(warm(0)) < float(warm(3)) and float(warm(5)) < 1e-3  # warms up over 3 steps, then decays
    annealed = fine_tune_learning_rate(_config(), steps=10)
    assert float(annealed(0)) == pytest.approx(1e-4) and float(annealed(10)) == pytest.approx(0.0)
    assert fine_tune_learning_rate(_config(reduce_lr=2), steps=10) == pytest.approx(1e-4)  # a rate it can change
    assert fine_tune_learning_rate(_config(fine_tune_schedule="constant"), steps=10) == pytest.approx(1e-4)


def test_the_first_phase_alone_learns_and_records_every_epoch(tmp_path):
    config = _config(epochs=3)
    keras.utils.set_random_seed(0)
    model = _small_net(keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.GlobalMaxPooling2D())
    compile_model(model, config, 0.01)
    result = train(model, _data(), config, tmp_path, verbose=0)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"} <= set(result.history[0])
    assert result.stop_reason is None and result.fine_tune_start is None and result.features is None
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["status"] == "finished" and state["epochs_completed"] == 3
    assert (tmp_path / "history.csv").read_text().count("\n") == 4  # a header and three epochs


def test_a_head_on_features_then_fine_tuning_at_a_tenth_of_the_rate():
    config = _config(cache_features=True, fine_tune=4, fine_tune_epochs=1)
    model = _transfer_model(config)
    frozen = {w.path: w.numpy().copy() for w in model.non_trainable_weights}
    result = train(model, _data(), config, None, verbose=0)
    assert [r["epoch"] for r in result.history] == [1, 2, 3] and result.fine_tune_start == 3
    assert result.features is None  # fine-tuning changed the backbone: the features read are stale
    rates = [r["learning_rate"] for r in result.history]
    assert rates[0] == pytest.approx(1e-3) and rates[2] <= 1e-4 + 1e-9  # the second phase: a tenth, annealed
    assert len(model.trainable_weights) > 2  # the top of the backbone is open
    opened = [w for w in model.trainable_weights if w.path in frozen]
    assert opened and any(not np.allclose(frozen[w.path], w.numpy()) for w in opened)  # and it learnt


def test_the_head_trained_on_features_is_the_whole_models_head():
    config = _config(cache_features=True)
    model = _transfer_model(config)
    backbone_before = [w.numpy().copy() for w in model.non_trainable_weights]
    result = train(model, _data(), config, None, verbose=0)
    (f_train, _), val = result.features
    assert f_train.shape == (24, 512) and val[0].shape == (8, 512)  # SqueezeNet's pooled features
    extractor, head = split_at_features(model, pooled=True)
    x = np.stack([np.asarray(square_image("tl", SIZE, 7))])
    np.testing.assert_allclose(model.predict(x, verbose=0), head.predict(extractor.predict(x, verbose=0), verbose=0),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    for a, b in zip(backbone_before, [w.numpy() for w in model.non_trainable_weights]):
        np.testing.assert_array_equal(a, b)  # frozen means frozen: only the head learnt


def test_reaching_the_target_accuracy_stops_and_skips_fine_tuning():
    config = _config(epochs=6, target_accuracy=0.0, fine_tune=4, cache_features=True)
    result = train(_transfer_model(config), _data(), config, None, verbose=0)
    assert len(result.history) == 1 and result.fine_tune_start is None
    assert "0" in result.stop_reason and "accuracy" in result.stop_reason


def test_ctrl_c_is_recorded_as_interrupted_and_resumable(tmp_path):
    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    config = _config(epochs=4)
    model = _small_net(keras.layers.Flatten())
    compile_model(model, config, 1e-3)
    with pytest.raises(KeyboardInterrupt):
        train(model, _data(), config, tmp_path, verbose=0, callbacks=[CtrlC()])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["status"] == "interrupted" and state["epochs_completed"] == 2
    assert (tmp_path / "last.keras").is_file()
