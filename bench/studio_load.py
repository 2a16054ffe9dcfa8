"""The studio's data page on a 25,000-image folder: first-page latency and the server's memory while browsing.

    python bench/studio_load.py [--images 25000] [--seconds 60]

Writes a project with one data folder of two classes (64x64 JPEGs, half each), starts ``imgclf studio`` on
127.0.0.1 in its own process, opens each class's first page and its 60 thumbnails once (the thumbnail cache), then:

- first page: 50 requests of ``GET /data/NAME`` (the first class's first page): p50 and p95 latency (issue 28: p95
  at most 300 ms with thumbnails cached);
- after ``Check every file`` (``POST /api/doctor``, timed; the synthetic pictures are rolled copies of one
  picture, so nearly every one is a duplicate or near duplicate — the worst case for the filters): the first page
  again, and the first page of the duplicates filter, p50 and p95 of 20 requests each;
- browsing: for ``--seconds``, a loop of random pages of both classes and their thumbnails (a person paging
  through), sampling the server's resident memory every 5 s: it must stay flat.

The server stops at the end (and by itself if this script dies: it is started with a timeout).
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from serve_load import free_port, rss_mb  # the same probes as the serving benchmark


def write_project(root: Path, images: int) -> None:
    rng = np.random.default_rng(0)
    for k, name in enumerate(("cats", "dogs")):
        folder = root / "pets" / name
        folder.mkdir(parents=True)
        base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        for i in range(images // 2):
            Image.fromarray(np.roll(base, i % 64, axis=k)).save(folder / f"{name}.{i:05d}.jpg", quality=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=25_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        start = time.perf_counter()
        write_project(root, args.images)
        print(f"wrote {args.images} JPEGs in {time.perf_counter() - start:.1f} s")
        port = free_port()
        timeout = str(int(args.seconds + 300))
        server = subprocess.Popen(["timeout", timeout, sys.executable, "-m", "imgclf.cli", "studio", str(root),
                                   "--port", str(port)], stderr=subprocess.PIPE, text=True)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                deadline = time.time() + 60
                while True:
                    try:
                        client.get("/")
                        break
                    except httpx.TransportError:
                        if time.time() > deadline:
                            raise
                        time.sleep(0.1)
                pid = int(subprocess.check_output(["pgrep", "-P", str(server.pid)]).split()[0])

                def open_page(cls: str, page: int) -> float:
                    t0 = time.perf_counter()
                    html = client.get("/data/pets", params={"cls": cls, "page_number": page}).text
                    took = time.perf_counter() - t0
                    for path in re.findall(r'/thumb\?path=([^"]+)"', html):
                        client.get(f"/thumb?path={path}")
                    return took

                for cls in ("cats", "dogs"):
                    open_page(cls, 1)  # the first pages' thumbnails made and cached
                times = []
                for _ in range(50):
                    t0 = time.perf_counter()
                    client.get("/data/pets", params={"cls": "cats"})
                    times.append(1000 * (time.perf_counter() - t0))
                print(f"first page, thumbnails cached: p50 {np.percentile(times, 50):.0f} ms, "
                      f"p95 {np.percentile(times, 95):.0f} ms (50 requests)")  # fmt: skip
                t0 = time.perf_counter()
                checked = client.post("/api/doctor", json={"data": "pets"}, headers={"Origin": base}, timeout=600)
                problems = checked.json()["problems"]
                print(f"check every file: {time.perf_counter() - t0:.1f} s, findings {problems}")
                for label, params in (("first page", {"cls": "cats"}),
                                      ("duplicates filter", {"view": "doctor:duplicate"})):  # fmt: skip
                    times = []
                    for _ in range(20):
                        t0 = time.perf_counter()
                        client.get("/data/pets", params=params).raise_for_status()
                        times.append(1000 * (time.perf_counter() - t0))
                    print(f"{label} with the findings: p50 {np.percentile(times, 50):.0f} ms, "
                          f"p95 {np.percentile(times, 95):.0f} ms (20 requests)")  # fmt: skip
                memory, pages, rng = [rss_mb(pid)], 0, random.Random(0)
                end, sample = time.time() + args.seconds, time.time() + 5
                while time.time() < end:
                    open_page(rng.choice(("cats", "dogs")), rng.randint(1, args.images // 2 // 60))
                    pages += 1
                    if time.time() >= sample:
                        memory.append(rss_mb(pid))
                        sample += 5
                print(f"browsing {args.seconds:.0f} s: {pages} pages with their thumbnails; server RSS (MB) every 5 s: "
                      + " ".join(f"{m:.0f}" for m in memory))  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
