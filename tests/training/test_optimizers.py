"""The fused optimizers compute exactly Keras' updates, save their state, and are what imgclf trains with."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from imgclf.errors import ImgclfError
from imgclf.training import optimizers


def _train(optimizer, steps: int = 6) -> list[np.ndarray]:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(steps * 4, 12)).astype("float32"), rng.normal(size=(steps * 4, 1)).astype("float32")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    return model.get_weights()


RMS, ADAM = (optimizers.RMSprop, keras.optimizers.RMSprop), (optimizers.Adam, keras.optimizers.Adam)


@pytest.mark.parametrize(
    "fused,reference,kwargs",
    [(*RMS, {}), (*RMS, {"momentum": 0.9}), (*RMS, {"centered": True, "rho": 0.8}),
     (*ADAM, {}), (*ADAM, {"beta_1": 0.5, "epsilon": 1e-4}), (*ADAM, {"amsgrad": True})],
    ids=["rmsprop", "rmsprop-momentum", "rmsprop-centered", "adam", "adam-betas", "adam-amsgrad"],
)  # fmt: skip
def test_fused_update_equals_keras_update(fused, reference, kwargs):
    got = _train(fused(learning_rate=0.01, **kwargs))
    expected = _train(reference(learning_rate=0.01, **kwargs))
    assert not np.allclose(got[0], _train(keras.optimizers.SGD(0.0))[0])  # the weights did move
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-6)


def test_saved_state_is_keras_state_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizers.make_optimizer("rmsprop", 1e-3), loss="mse")
    model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), verbose=0)
    # momentum=0: the kernel's scratch buffer is not optimizer state (iterations, learning rate, 2 velocities)
    names = [v.path.split("/")[-1] for v in model.optimizer.variables]
    assert len(names) == 4 and names[:2] == ["iteration", "learning_rate"]
    assert all(n.endswith("_velocity") for n in names[2:])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.optimizer) is optimizers.RMSprop and int(loaded.optimizer.iterations) == 1
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    loaded.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), verbose=0)  # and it trains on


def test_make_optimizer_names_and_errors():
    assert type(optimizers.make_optimizer("adam", 1e-3)) is optimizers.Adam
    assert isinstance(optimizers.make_optimizer("sgd", 1e-3), keras.optimizers.SGD)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, 10)
    opt = optimizers.make_optimizer("rmsprop", schedule)
    assert float(opt.learning_rate) == pytest.approx(1e-3)  # the schedule at step 0
    opt.iterations.assign(5)
    assert float(opt.learning_rate) == pytest.approx(5e-4)  # half-way down the cosine
    with pytest.raises(ImgclfError, match="optimizer must be one of"):
        optimizers.make_optimizer("adagrad", 1e-3)
    with pytest.raises(ImgclfError, match="learning_rate must be a positive float. Received: -1"):
        optimizers.make_optimizer("rmsprop", -1)
