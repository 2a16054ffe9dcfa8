"""Throughput of `imgclf doctor`: files per second, header checks (--quick) and full decode.

    python bench/doctor_throughput.py [DATA]      # default ../shared/datasets/cats_and_dogs_filtered

Targets (issue 3): >= 1,000 files/s for header checks, >= 400 files/s with full decode, on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imgclf.data.doctor import diagnose_folder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cats_and_dogs_filtered"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    diagnose_folder(args.data, full=False)  # warm the page cache: measure decoding, not the disk
    for full in (False, True):
        report = diagnose_folder(args.data, full=full)
        kind = "full decode + hashes" if full else "header checks (--quick)"
        found = {k: len(v) for k, v in report["problems"].items()}
        print(f"{kind:26s} {len(report['files'])} files  {report['seconds']:.2f} s  "
              f"{report['files_per_second']:.0f} files/s  problems: {found}")  # fmt: skip


if __name__ == "__main__":
    main()
