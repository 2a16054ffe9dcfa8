"""What the studio's tests share: the same-origin header and a snapshot of every byte of a project."""

import contextlib
import hashlib
import os

ORIGIN = {"Origin": "http://127.0.0.1"}


def snapshot(root):
    """Every file under ``root`` (the studio's own folder aside) with its SHA-256."""
    out = {}
    for folder, _, files in os.walk(root):
        if ".imgclf-studio" in folder:
            continue
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def write_pictures(folder, kind: str, count: int, start: int = 0, size: int = 64):
    """``count`` PNGs of one kind into ``folder``: ``"discs"`` (a bright disc on a noisy dark ground) or
    ``"stripes"`` (coloured stripes of random width) — textures a pretrained backbone's pooled features tell apart,
    wherever they are in the picture."""
    import numpy as np
    from PIL import Image, ImageDraw

    os.makedirs(folder, exist_ok=True)
    for i in range(start, start + count):
        rng = np.random.default_rng((kind == "stripes") * 10_000 + i)
        if kind == "discs":
            im = Image.fromarray(rng.integers(0, 70, (size, size, 3), dtype=np.uint8))
            r = int(rng.integers(size // 5, size // 3))
            x, y = (int(v) for v in rng.integers(r, size - r, 2))
            ImageDraw.Draw(im).ellipse(
                (x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(150, 256, 3))
            )
        else:
            arr = np.zeros((size, size, 3), np.uint8)
            width = int(rng.integers(2, 6))
            for c in range(0, size, 2 * width):
                arr[:, c : c + width] = rng.integers(100, 256, 3)
            im = Image.fromarray(arr).rotate(int(rng.integers(0, 180)))
        im.save(os.path.join(folder, f"{kind}-{i:03d}.png"))


def wait_job(client, job_id, until=None, timeout=240):
    """The job's state once ``until(job)`` holds (default: it has ended), polled through ``/api/jobs/ID``.

    Raises:
        AssertionError: not within ``timeout`` seconds.
    """
    import time

    until = until or (lambda j: j["status"] not in ("queued", "running"))
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never got there: {job}")


@contextlib.contextmanager
def served(root):
    """The studio for ``root`` on a free port of 127.0.0.1 in a thread, stopped on leaving; yields its URL."""
    import threading
    import time

    import pytest

    uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
    from test_serve_browser import free_port

    from imgclf.studio.app import create_studio

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_studio(root), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
