"""The backbone pass: compiled with XLA for long datasets, the same numbers as eager calls, in the same order."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from imgclf.features.extract import XLA_MIN_BATCHES, extract_features


def _small_net() -> keras.Model:
    images = keras.Input((24, 24, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(images)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    return keras.Model(images, keras.layers.GlobalAveragePooling2D()(x))


def test_compiled_pass_matches_eager_calls_on_every_batch_including_a_short_last_one():
    net = _small_net()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4 * (XLA_MIN_BATCHES + 2) + 3, 24, 24, 3), dtype=np.uint8)  # last batch: 3
    labels = np.arange(len(images))
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    assert int(ds.cardinality()) > XLA_MIN_BATCHES  # the compiled path
    features, targets = extract_features(net, ds)
    eager = np.asarray(net(images, training=False))
    assert features.shape == (len(images), 8) and features.dtype == np.float32
    assert (targets == labels).all() and np.allclose(features, eager, atol=1e-5)
    assert np.abs(features).sum() > 0
    short = tf.data.Dataset.from_tensor_slices((images[:6], labels[:6])).batch(4)  # eager path
    few, _ = extract_features(net, short)
    assert np.allclose(few, eager[:6], atol=1e-5)


def test_one_compilation_an_extractor_that_does_not_keep_it_alive():
    import gc
    import weakref

    from imgclf.features import extract as features

    net = _small_net()
    images = np.zeros((4 * (XLA_MIN_BATCHES + 1), 24, 24, 3), np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images)))).batch(4)
    extract_features(net, ds)
    compiled = features._COMPILED[net]
    extract_features(net, ds)  # the validation pass: the same compiled function
    assert features._COMPILED[net] is compiled
    alive = weakref.ref(net)
    del net, compiled
    gc.collect()
    assert alive() is None  # the cache let the model go
