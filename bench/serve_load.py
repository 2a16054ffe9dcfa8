"""Load on `imgclf serve`, single-image latency through the Python API, and CLI cold start to first prediction.

Loopback only, bounded in count and time. Starts `imgclf serve RUN` on 127.0.0.1 as a child process, warms it up,
then CLIENTS threads post one cats-vs-dogs photo each, back to back, for SECONDS (or MAX_REQUESTS in all); prints
throughput, p50/p99 latency, the error count and the server's resident memory (VmRSS) after warm-up and at the end.

    python bench/serve_load.py RUN [--clients 16] [--seconds 60] [--image FILE]

RUN: a run folder, e.g. `imgclf train ../shared/datasets/cats_and_dogs_filtered --name cs` → runs/cs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

DEFAULT_IMAGE = (
    Path(__file__).resolve().parents[2] / "shared/datasets/cats_and_dogs_filtered/validation/cats/cat.2000.jpg"
)
MAX_REQUESTS = 200_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def multipart(image: bytes, name: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary}"


def post(port: int, body: bytes, content_type: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def load(port: int, body: bytes, content_type: str, clients: int, seconds: float) -> dict:
    latencies, errors, lock = [], [0], threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        while time.perf_counter() < stop:
            with lock:
                if len(latencies) + errors[0] >= MAX_REQUESTS:
                    return
            try:
                status, dt = post(port, body, content_type)
            except OSError:
                status, dt = 0, 0.0
            with lock:
                if status == 200:
                    latencies.append(dt)
                else:
                    errors[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - begin
    ms = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "errors": errors[0], "seconds": round(wall, 1),
            "throughput_per_s": round(len(latencies) / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1)}  # fmt: skip


def api_latency(run: str, image: Path, repeats: int = 100) -> dict:
    from imgclf import ImageClassifier

    clf = ImageClassifier.load(run)
    for _ in range(5):
        clf.predict_proba([image])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict_proba([image])
        times.append(time.perf_counter() - start)
    return {
        "p50_ms": round(1000 * float(np.median(times)), 1),
        "p90_ms": round(1000 * float(np.percentile(times, 90)), 1),
    }


def cold_start(run: str, image: Path, repeats: int = 3) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(["imgclf", "predict", run, str(image)], check=True, capture_output=True)
        out.append(round(time.perf_counter() - start, 2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    args = parser.parse_args()
    image = args.image.read_bytes()
    body, content_type = multipart(image, args.image.name)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "imgclf", "serve", args.run, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        load(port, body, content_type, args.clients, 5)  # warm-up: traces, allocator pools
        rss_start = rss_mb(server.pid)
        result = load(port, body, content_type, args.clients, args.seconds)
        result |= {
            "clients": args.clients,
            "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_mb(server.pid), 1),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("serve:", json.dumps(result))
    print("python API, one image, warm:", json.dumps(api_latency(args.run, args.image)))
    print("CLI cold start to first prediction (s):", cold_start(args.run, args.image))
    print(f"(cpu count {os.cpu_count()})")


if __name__ == "__main__":
    main()
