"""CPU seconds to augment one cats-vs-dogs epoch: imgclf's XLA warp vs TensorFlow's projective-transform kernel.

    python bench/augment_warp.py [--repeats 4]

Warps 100 batches of 20 random 150x150x3 uint8 images (one epoch of the course's cats-vs-dogs training set)
with the course's augmentation (rotation 40°, shifts 0.2, shear 0.2, zoom 0.2, flips, fill ``nearest``), and
prints wall and CPU seconds (minimum over the repeats) for: imgclf's ``augment_batch`` (bilinear and nearest),
and ``tf.raw_ops.ImageProjectiveTransformV3`` (bilinear, nearest) on the same matrices. CPU seconds are what
counts on a 2-core machine, where augmentation shares the cores with training.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from imgclf.pipeline.augment import affine_matrices, augment_batch, make_augmentation  # noqa: E402

B, H, W = 20, 150, 150


def course_matrices(seed):
    seeds = tf.random.experimental.stateless_split(seed, num=8)

    def u(i, low, high):
        return tf.random.stateless_uniform([B], seed=seeds[i], minval=low, maxval=high)

    return affine_matrices(H, W, theta=u(0, -40, 40), tx=u(1, -30, 30), ty=u(2, -30, 30), shear=u(3, -0.2, 0.2),
                           zx=u(4, 0.8, 1.2), zy=u(5, 0.8, 1.2), flip_h=u(6, 0, 1) < 0.5,
                           flip_v=tf.zeros([B], tf.bool))  # fmt: skip


def tf_kernel(interpolation: str):
    @tf.function
    def run(images, seed):
        inverse = tf.linalg.inv(course_matrices(seed))
        transforms = tf.reshape(inverse / inverse[:, 2:3, 2:3], (-1, 9))[:, :8]
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=tf.cast(images, tf.float32), transforms=transforms, output_shape=[H, W],
            fill_value=tf.constant(0.0), interpolation=interpolation, fill_mode="NEAREST",
        )  # fmt: skip
        return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)

    return run


def imgclf_warp(order: int):
    aug = make_augmentation("course", interpolation_order=order)
    return tf.function(lambda images, seed: augment_batch(images, aug, seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (B, H, W, 3), dtype=np.uint8))
    candidates = {
        "imgclf augment_batch, bilinear (XLA)": imgclf_warp(1),
        "imgclf augment_batch, nearest (XLA)": imgclf_warp(0),
        "ImageProjectiveTransformV3, bilinear": tf_kernel("BILINEAR"),
        "ImageProjectiveTransformV3, nearest": tf_kernel("NEAREST"),
    }
    for name, fn in candidates.items():
        fn(images, tf.constant([0, 0], tf.int64)).numpy()  # trace / compile
        wall, cpu = [], []
        for r in range(args.repeats):
            w, c = time.perf_counter(), time.process_time()
            for i in range(100):
                out = fn(images, tf.constant([i, r], tf.int64))
            out.numpy()
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        print(f"{name:40s} 2,000 images: wall {min(wall):.3f} s  CPU {min(cpu):.3f} s", flush=True)


if __name__ == "__main__":
    main()
