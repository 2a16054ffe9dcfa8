"""What the studio's tests share: the same-origin header, a snapshot of every byte of a project, waiting for a job,
and the studio served on a free port."""

import contextlib
import hashlib
import os

from helpers.network import free_port
from helpers.waiting import wait_until

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


def wait_job(client, job_id, until=None, timeout=240):
    """The job's state once ``until(job)`` holds (default: it has ended), looked at through ``/api/jobs/ID``.

    Raises:
        AssertionError: not within ``timeout`` seconds.
    """
    until = until or (lambda j: j["status"] not in ("queued", "running"))

    def there():
        job = client.get(f"/api/jobs/{job_id}").json()
        return job if until(job) else None

    return wait_until(there, timeout, f"job {job_id} reaching its state", every=0.2)


@contextlib.contextmanager
def served(root):
    """The studio for ``root`` on a free port of 127.0.0.1 in a thread, stopped on leaving; yields its URL."""
    import threading

    import pytest

    uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
    from imgclf.studio.app import create_studio

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_studio(root), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the studio starting")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
