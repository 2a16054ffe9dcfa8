"""Seeding that stays inside training: :func:`seeded` sets every global random state to a seed for the
duration of a block (Keras' ``set_random_seed``: Python, NumPy, TensorFlow, Keras' global ``SeedGenerator``)
and gives the caller back the states it found, so ``fit`` is reproducible without reseeding a user's program.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import global_state  # Keras keeps its global seed here (set_random_seed)

_KERAS_KEYS = ("global_random_seed", "global_seed_generator")


@contextmanager
def seeded(seed: int):
    """Within the block, weight initialisation, dropout and every unseeded random op draw from ``seed``.

    On exit, Python's ``random`` and NumPy's global states are restored exactly, TensorFlow's global seed to
    what it was (or unset), and Keras' global seed and ``SeedGenerator`` to what they were.
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    tf_seed = tf.compat.v1.get_seed(None)[0]
    keras_state = {k: global_state.get_global_attribute(k) for k in _KERAS_KEYS}
    keras.utils.set_random_seed(int(seed))
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        tf.random.set_seed(tf_seed)
        for key, value in keras_state.items():
            global_state.set_global_attribute(key, value)
