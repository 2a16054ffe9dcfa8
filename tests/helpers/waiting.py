"""Waiting for what a test waits on — a child's output line, a file's state, a server — by looking again until it
holds, never by sleeping a guessed time."""

import time


def wait_until(holds, timeout: float = 120.0, what: str = "the condition", every: float = 0.05):
    """``holds()``'s first true value, looked at every ``every`` seconds.

    Raises:
        AssertionError: naming ``what``, when it has not held within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = holds()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(every)


def wait_for_line(log, text: str, timeout: float = 120.0, process=None) -> str:
    """The contents of the file ``log`` once it holds ``text`` (a child writes it); fails early, with the log's
    end, if ``process`` ends first.

    Raises:
        AssertionError: ``text`` not there within ``timeout`` seconds, or ``process`` ended without writing it.
    """

    def written():
        seen = log.read_text(errors="replace") if log.exists() else ""
        if text in seen:
            return seen
        assert process is None or process.poll() is None, f"the process ended without {text!r}:\n{seen[-2000:]}"
        return None

    return wait_until(written, timeout, f"the line {text!r} in {log}")
