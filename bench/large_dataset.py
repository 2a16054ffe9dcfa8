"""25,000 images in bounded memory: course_small for 2 epochs from a folder (cache off) and from packed shards.

    python bench/large_dataset.py                 # generate once (cached), then time both sources
    python bench/large_dataset.py --count 25000 --work /tmp/imgclf_bench_large

The images are 500x375 JPEGs made from ../shared/datasets/cats_and_dogs_filtered/train (random crops of 60-100 %
of the area, flips, brightness/contrast/colour jitter; quality 90), 12,500 per class, written once into
``--work/images`` (a ``.complete`` marker). Each run trains in its own process (``ru_maxrss`` is the process's
peak): ``course_small`` at 150x150, batch 20, 2 epochs, ``cache=none`` (folder) or streamed shards; the peak RSS
after each epoch and its current RSS are reported, and the epoch time against a 3,000-image run scaled by count.
Like the ``imgclf`` command, each run first caps glibc's arenas (:func:`imgclf.cli.bound_heap_growth`; a
``MALLOC_ARENA_MAX`` in the environment wins). ``--epochs`` and ``--only`` select what runs.

``--only cli`` runs the command a user types instead, ``imgclf train IMAGES --epochs 2 --validation-split 0.1``
with the default cache (and calibration, evaluation and the report), samples its RSS every 0.2 s from
``/proc/PID/status``, and prints the peak of each phase: until the first epoch ends (decoding into the cache),
the epochs, and after the last epoch (calibration, the "unknown" reference, evaluation, report). Figures go in
bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "shared" / "datasets" / "cats_and_dogs_filtered" / "train"
SIZE = (500, 375)  # width, height in pixels


def generate(folder: Path, count: int, seed: int = 0) -> Path:
    """``folder/{cats,dogs}/NNNNN.jpg``: ``count`` images in all, written once."""
    if (folder / ".complete").is_file():
        return folder
    rng = np.random.default_rng(seed)
    for cls in ("cats", "dogs"):
        sources = sorted((SOURCE / cls).glob("*.jpg"))
        out = folder / cls
        out.mkdir(parents=True, exist_ok=True)
        for i in range(count // 2):
            with Image.open(sources[i % len(sources)]) as im:
                im = im.convert("RGB")
                w, h = im.size
                scale = np.sqrt(rng.uniform(0.6, 1.0))
                cw, ch = int(w * scale), int(h * scale)
                x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                im = im.crop((x, y, x + cw, y + ch)).resize(SIZE, Image.BILINEAR)
                if rng.random() < 0.5:
                    im = ImageOps.mirror(im)
                for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
                    im = enhance(im).enhance(float(rng.uniform(0.7, 1.3)))
                im.save(out / f"{i:05d}.jpg", quality=90)
    (folder / ".complete").touch()
    return folder


def rss_mb() -> tuple[float, float]:
    """(peak RSS so far, current RSS) of this process, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/status") as f:
        current = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return peak, current


def train_once(data: str, limit: int | None, epochs: int = 2) -> dict:
    """Train course_small for 2 epochs on ``data`` (a folder, packed shards, or the first ``limit`` images of a
    folder as paths) in this process; per-epoch seconds and RSS."""
    import keras

    from imgclf import ImageClassifier
    from imgclf.cli import bound_heap_growth

    bound_heap_growth()  # as the imgclf command does at start-up (bench/README.md: the shard stream's memory)
    rows = []

    class Memory(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            peak, current = rss_mb()
            rows.append({"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.start, 1),
                         "peak_rss_mb": round(peak), "rss_mb": round(current),
                         "val_accuracy": round(float(logs.get("val_accuracy", 0)), 4)})  # fmt: skip

    clf = ImageClassifier(model="course_small", epochs=epochs, batch_size=20, cache="none", calibrate=False)
    if limit:
        paths = sorted(str(p) for p in Path(data).rglob("*.jpg"))
        rng = np.random.default_rng(0)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), limit, replace=False))]
        clf.fit(paths, [Path(p).parent.name for p in paths], callbacks=[Memory()], verbose=0)
    else:
        clf.fit(data, callbacks=[Memory()], verbose=0)
    return {"data": data, "images": limit or None, "epochs": rows}


def cli_phases(images: Path, epochs: int) -> None:
    """``imgclf train`` on the images as typed; the peak RSS (MB) of each phase, from ``/proc/PID/status``."""
    import csv
    import tempfile

    with tempfile.TemporaryDirectory() as runs:
        cmd = ["imgclf", "train", str(images), "--epochs", str(epochs), "--validation-split", "0.1", "--runs-dir",
               runs, "--name", "r"]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})  # fmt: skip
        history, samples = Path(runs) / "r" / "history.csv", []  # (seconds, rss MB, epochs done)
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
            except (OSError, StopIteration):  # the process has just ended
                continue
            try:
                with open(history, newline="") as f:
                    done = len(list(csv.DictReader(f)))
            except OSError:  # no epoch has ended yet
                done = 0
            samples.append((time.perf_counter() - start, rss, done))
            time.sleep(0.2)
        err = proc.stderr.read()
        if proc.returncode:
            print(err[-3000:])
            return
    after = "after training (calibration, unknown reference, evaluation, report)"
    phases = {
        "until epoch 1 ends (decoding, cache)": [s for s in samples if s[2] == 0],
        "epochs 2..": [s for s in samples if 0 < s[2] < epochs],
        after: [s for s in samples if s[2] >= epochs],
    }
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the kernel's own count, every moment
    print(
        f"imgclf train {images.name} --epochs {epochs} --validation-split 0.1: {samples[-1][0]:.0f} s, "
        f"peak RSS {peak:,.0f} MB (sampled: {max(s[1] for s in samples):,.0f} MB)"
    )
    for name, rows in phases.items():
        if rows:
            top = max(rows, key=lambda r: r[1])
            print(f"  {name}: peak {top[1]:,.0f} MB at {top[0]:.0f} s ({rows[0][0]:.0f}-{rows[-1][0]:.0f} s)")
    print("  " + " ".join(line for line in err.splitlines() if "Decoded training images" in line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=25_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/imgclf_bench_large"))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--only",
        choices=("folder-3000", "folder", "packed", "cli"),
        action="append",
        help="run only these (repeatable; default: all three)",
    )
    parser.add_argument("--train", help=argparse.SUPPRESS)  # internal: one run in a fresh process
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        print(json.dumps(train_once(args.train, args.limit, args.epochs)))
        return
    start = time.perf_counter()
    images = generate(args.work / "images", args.count)
    print(f"images: {args.count:,} in {images} ({time.perf_counter() - start:.0f} s)")
    packed = args.work / "packed"
    if not (packed / "manifest.json").is_file():
        from imgclf.data.images import ImageSpec
        from imgclf.pipeline.records import pack

        start = time.perf_counter()
        manifest = pack(images, packed, image=ImageSpec((150, 150)))
        size = sum(s["bytes"] for part in manifest["splits"].values() for s in part["shards"])
        print(f"packed in {time.perf_counter() - start:.0f} s: {size / 1e9:.2f} GB")
    if args.only and "cli" in args.only:
        cli_phases(images, args.epochs)
        args.only.remove("cli")
        if not args.only:
            return
    runs = {"folder-3000": (str(images), 3000), "folder": (str(images), None), "packed": (str(packed), None)}
    for data, limit in [runs[name] for name in args.only or runs]:
        cmd = [sys.executable, __file__, "--train", data, "--epochs", str(args.epochs)]
        cmd += ["--limit", str(limit)] if limit else []
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode:
            print(done.stderr[-3000:])
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        for row in result["epochs"]:
            print(f"| {Path(data).name} | {limit or args.count:,} | {row['epoch']} | {row['seconds']} | "
                  f"{row['peak_rss_mb']:,} | {row['rss_mb']:,} | {row['val_accuracy']} |")  # fmt: skip


if __name__ == "__main__":
    main()
