"""Training-epoch time of ``course_small`` with Keras' optimizers vs imgclf's fused ones.

    python bench/optimizer_step.py [--repeats 5] [--precision float32]

Trains ``course_small`` (150x150, batch 20, 9.5 M weights) on 2,000 random uint8 images held in memory — no
input pipeline, no validation — for ``--repeats`` epochs per optimizer, and prints the minimum and median
epoch seconds: the cost of the model's arithmetic plus the optimizer's update, nothing else. On this VM
epoch times swing by up to ±50 % for identical work, so read the minimum.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from imgclf.models import create_model  # noqa: E402
from imgclf.training import optimizers  # noqa: E402

CANDIDATES = {
    "keras RMSprop": lambda: keras.optimizers.RMSprop(1e-3),
    "imgclf RMSprop (fused)": lambda: optimizers.RMSprop(1e-3),
    "keras Adam": lambda: keras.optimizers.Adam(1e-3),
    "imgclf Adam (fused)": lambda: optimizers.Adam(1e-3),
    "keras SGD (2 ops, for scale)": lambda: keras.optimizers.SGD(1e-3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2000, 150, 150, 3), dtype=np.uint8)
    y = rng.integers(0, 2, (2000, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(20).cache().prefetch(8)
    for name, make in CANDIDATES.items():
        keras.utils.set_random_seed(0)
        model = create_model("course_small", (150, 150, 3), 2, "binary", args.precision)
        model.compile(optimizer=make(), loss="binary_crossentropy")
        model.fit(ds.take(5), epochs=1, verbose=0)  # trace and build
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.fit(ds, epochs=1, verbose=0)
            times.append(time.perf_counter() - start)
        print(f"{name:30s} min {min(times):6.2f} s  median {statistics.median(times):6.2f} s  "
              f"[{', '.join(f'{t:.2f}' for t in times)}]", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
