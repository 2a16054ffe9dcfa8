"""Calibration and "unknown" on the course's dataset: ECE before/after temperature scaling, and AUROC / FPR at 95 %
TPR of every OOD score against images of other things available offline.

    python bench/ood.py                         # trains SqueezeNet (frozen, gap head, 10 epochs) on cats_and_dogs
    python bench/ood.py --run runs/squeeze      # or scores an existing run
    python bench/ood.py --model course_small --epochs 15
    python bench/ood.py --run runs/squeeze --export onnx tflite tflite-int8   # the same, scored by each export

In-distribution: the validation images of ../shared/datasets/cats_and_dogs_filtered (1,000). Other images:
../shared/datasets/happy-or-sad (80 faces), scikit-learn's handwritten digits (500, 8x8 upscaled), and 300
generated textures (noise, stripes, checkerboards, gradients). Figures go in bench/README.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CATS_AND_DOGS = ROOT / "shared" / "datasets" / "cats_and_dogs_filtered"
HAPPY_OR_SAD = ROOT / "shared" / "datasets" / "happy-or-sad"
SQUEEZENET = ROOT / "shared" / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def textures(folder: Path, count: int = 300, size: int = 160) -> Path:
    """Noise, stripes, checkerboards and gradients in random colours."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(count):
        kind, colour = i % 4, rng.integers(0, 256, 3)
        if kind == 0:
            arr = rng.integers(0, 256, (size, size, 3))
        elif kind == 1:
            period = int(rng.integers(4, 30))
            arr = ((xx + yy * rng.integers(0, 2)) // period % 2)[..., None] * colour
        elif kind == 2:
            period = int(rng.integers(4, 40))
            arr = ((xx // period + yy // period) % 2)[..., None] * colour
        else:
            arr = (xx / size)[..., None] * colour + (1 - yy / size)[..., None] * rng.integers(0, 256, 3)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def digits(folder: Path, count: int = 500) -> Path:
    from sklearn.datasets import load_digits

    folder.mkdir(parents=True, exist_ok=True)
    images = load_digits().images[:count]
    for i, im in enumerate(images):
        Image.fromarray((im * 255 / 16).astype(np.uint8)).convert("RGB").resize((64, 64)).save(folder / f"{i:03d}.png")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run folder (default: train one)")
    parser.add_argument("--model", default=None, help="train this model instead of SqueezeNet")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--work", type=Path, default=Path("/tmp/imgclf_bench_ood"))
    parser.add_argument("--export", nargs="*", default=[], help="also score with these exports: savedmodel, onnx, "
                        "tflite, tflite-int8 (the run's default method, in the export's own runtime)")  # fmt: skip
    args = parser.parse_args()
    from imgclf import ImageClassifier
    from imgclf.evaluation.unknown import ood_evaluation
    from imgclf.predict.predictor import Predictor

    args.work.mkdir(parents=True, exist_ok=True)
    if args.run is None:
        settings = (dict(model=args.model) if args.model else
                    dict(backbone="squeezenet1_1", weights=str(SQUEEZENET), head="gap"))  # fmt: skip
        start = time.perf_counter()
        clf = ImageClassifier(**settings, epochs=args.epochs).fit(CATS_AND_DOGS, run_dir=args.work / "run", verbose=0)
        print(f"trained {settings} in {time.perf_counter() - start:.0f} s "
              f"(calibration included), val_accuracy {clf.history_[-1]['val_accuracy']:.4f}")  # fmt: skip
        args.run = args.work / "run"
    predictor = Predictor.from_run(args.run)
    cal = predictor.calibration
    print(f"temperature {cal['temperature']:.3f} (fitted: {cal['temperature_fitted']}, "
          f"{cal['validation_errors']} errors in {cal['validation_images']}); ECE(15 bins) {cal['ece_before']:.4f} "
          f"-> {cal['ece_after']:.4f}; NLL {cal['nll_before']:.4f} -> {cal['nll_after']:.4f}")  # fmt: skip
    others = {"happy-or-sad faces": HAPPY_OR_SAD, "digits": digits(args.work / "digits"),
              "textures": textures(args.work / "textures")}  # fmt: skip
    inside = CATS_AND_DOGS / "validation"
    print("| other images | method | AUROC | FPR at 95 % TPR | unknown: cats/dogs val | unknown: other |")
    print("|---|---|---|---|---|---|")
    for name, folder in others.items():
        start = time.perf_counter()
        result = ood_evaluation(predictor, inside, folder)
        for method, m in result["methods"].items():
            print(f"| {name} ({m['out_images']}) | {method} | {m['auroc']:.4f} | {m['fpr_at_95_tpr']:.4f} | "
                  f"{m['unknown_rate_in']:.3f} | {m['unknown_rate_out']:.3f} |")  # fmt: skip
        print(f"<!-- {name}: {time.perf_counter() - start:.0f} s -->")
    for kind in args.export:
        exported(args.run, kind, inside, others)


def exported(run: Path, kind: str, inside: Path, others: dict) -> None:
    """Export the run as ``kind`` and print the default method's AUROC from the export's own runtime."""
    from imgclf.deploy.export import export_run
    from imgclf.deploy.runtime import open_predictor
    from imgclf.evaluation.unknown import ood_evaluation

    format, _, quantize = kind.partition("-")
    record = export_run(run, format, quantize=quantize or None, out=run / "export" / kind)
    check = record["parity"]
    print(
        f"{kind}: {record['bytes']:,} bytes, top-1 agreement {check['top1_agreement']:.4f}, unknown agreement "
        f"{check['unknown_agreement']:.4f}, max ood_score difference {check['max_ood_score_difference']:.2e}"
    )
    predictor = open_predictor(record["path"])
    for name, folder in others.items():
        m = ood_evaluation(predictor, inside, folder)["methods"][predictor.ood.method]
        print(
            f"  {name}: {predictor.ood.method} AUROC {m['auroc']:.4f}, FPR95 {m['fpr_at_95_tpr']:.4f}, unknown "
            f"{m['unknown_rate_in']:.3f} in / {m['unknown_rate_out']:.3f} other"
        )


if __name__ == "__main__":
    main()
