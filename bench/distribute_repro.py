"""Minimal reproduction, for upstream, of why imgclf trains multi-worker with its own loop and not ``Model.fit``.

``keras.Model.fit`` under ``tf.distribute.MultiWorkerMirroredStrategy`` (two processes on 127.0.0.1, plain Keras, no
imgclf) fails before its first step:

1. ``Trainer._maybe_symbolic_build`` calls ``strategy.reduce("MEAN", batch, axis=None)`` on the first distributed
   batch, a tuple of ``PerReplica`` values: "Attempt to convert a value (PerReplica:{...}) to a Tensor".
2. With that step skipped, ``reduce_per_replica`` reduces each scalar metric with ``strategy.reduce("MEAN", v,
   axis=0)``: "Invalid reduction dimension 0 for input with 0 dimensions".

Reported upstream as keras-team/keras#20585 and tensorflow/tensorflow#72388. ``imgclf.training.distributed.steps.fit``
is the custom training loop TensorFlow's guide describes (``strategy.run`` + ``GradientTape`` + the Keras optimizer).

Run: ``python bench/distribute_repro.py`` (starts the two workers itself; about 20 s). Each worker prints one line per
case: ``OK`` or the error's first line. Measured with Keras 3.15.1, TensorFlow 2.21.0:

    worker 0 fit: FAILED ValueError: Attempt to convert a value (PerReplica:{
    worker 1 fit: FAILED ValueError: Attempt to convert a value (PerReplica:{
    worker 0 skip-symbolic-build: FAILED ValueError: Invalid reduction dimension 0 for input with 0 dimensions. ...
    worker 1 skip-symbolic-build: FAILED ValueError: Invalid reduction dimension 0 for input with 0 dimensions. ...
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

WORKER = r"""
import json, os, sys
index, workers, case = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
import numpy as np, tensorflow as tf, keras

strategy = tf.distribute.MultiWorkerMirroredStrategy()
x = np.random.RandomState(0).rand(64, 8).astype("float32")
y = (x.sum(1) > 4).astype("float32")
with strategy.scope():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
if case == "skip-symbolic-build":  # step past the first bug to reach the second
    model._maybe_symbolic_build = lambda *args, **kwargs: None
try:
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=1, verbose=0)
    print(f"worker {index} {case}: OK", flush=True)
except Exception as exc:
    print(f"worker {index} {case}: FAILED {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160]}", flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(index: int, workers: str, case: str, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-c", WORKER, str(index), workers, case]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def main() -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for case in ("fit", "skip-symbolic-build"):
        workers = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
        procs = [worker(i, workers, case, env) for i in (0, 1)]
        for proc in procs:
            out, _ = proc.communicate(timeout=180)
            print(out.strip())
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    import tensorflow as tf

    print(json.dumps({"keras": keras.__version__, "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
