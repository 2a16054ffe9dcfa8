"""Reading a label table: a 100,000-row table with its folder of pictures, read, matched and checked
(:func:`imgclf.data.tables.load_table`), beside listing the same 100,000 pictures as class folders
(:func:`imgclf.load_folder`), in one process, imports done first (pandas, scikit-learn: paid once by any training).

    python bench/table_read.py [--rows 100000] [--repeat 3]

The pictures are empty files named ``*.jpg``: matching a table reads names only (one ``scandir`` a folder, never one
``stat`` or ``open`` a row), as listing class folders does. Prints the best of ``--repeat`` for each, and the ratio.
"""

import argparse
import tempfile
import time
from pathlib import Path


def make(root: Path, rows: int, classes: int = 5) -> tuple[Path, Path]:
    """``root/table/{train.csv, train_images/}`` and ``root/folders/<class>/`` with the same ``rows`` names."""
    images, folders = root / "table" / "train_images", root / "folders"
    images.mkdir(parents=True)
    for c in range(classes):
        (folders / f"c{c}").mkdir(parents=True)
    lines = ["image_id,label"]
    for i in range(rows):
        name = f"{i:07d}.jpg"
        open(images / name, "wb").close()
        open(folders / f"c{i % classes}" / name, "wb").close()
        lines.append(f"{name},{i % classes}")
    (root / "table" / "train.csv").write_text("\n".join(lines) + "\n")
    return root / "table" / "train.csv", folders


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import pandas  # noqa: F401
    import sklearn.model_selection  # noqa: F401

    from imgclf.data.folders import load_folder
    from imgclf.data.tables import load_table

    with tempfile.TemporaryDirectory() as tmp:
        table, folders = make(Path(tmp), args.rows)
        t_table = best_of(args.repeat, lambda: load_table(table))
        t_folder = best_of(args.repeat, lambda: load_folder(folders))
        dataset, source = load_table(table)
        print(f"label table  {args.rows:,} rows: {t_table:.2f} s ({len(dataset.train):,} train + "
              f"{len(dataset.validation):,} validation; {source.summary})")
        print(f"class folders {args.rows:,} files: {t_folder:.2f} s")
        print(f"ratio table / folders = {t_table / t_folder:.2f}")


if __name__ == "__main__":
    main()
