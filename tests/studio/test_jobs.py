"""The studio's job queue (imgclf.studio.jobs.Jobs) with a fake Popen: one job at a time, the next when it ends,
Stop (a queued job dropped, a running one sent SIGINT), a job that cannot start, a job's output written only when
it succeeds, and the log without the progress bar's redraws. No process is started."""

import queue
import signal
import subprocess
import threading

import pytest
from helpers import wait_until

from imgclf.studio import jobs as jobs_module
from imgclf.studio.jobs import Jobs


class FakeProcess:
    """What ``subprocess.Popen`` gives the queue: lines the test says (:meth:`say`), an exit code it chooses
    (:meth:`end`), the signals it was sent. ``command[0] == "missing"`` fails to start as a missing program does;
    a job with an output file gets ``command[-1]`` written into it."""

    def __init__(self, command, stdout=None, stderr=None, **_):
        if command[0] == "missing":
            raise FileNotFoundError(2, "No such file or directory", command[0])
        self.command, self.signals, self.returncode = command, [], None
        self._lines, self._ended = queue.Queue(), threading.Event()
        if hasattr(stdout, "write"):
            stdout.write(command[-1])
        lines = iter(self._lines.get, None)
        self.stdout = lines if stdout is subprocess.PIPE else None
        self.stderr = lines if stderr is subprocess.PIPE else None

    def say(self, line: str):
        self._lines.put(line + "\n")

    def end(self, code: int):
        self.returncode = code
        self._lines.put(None)
        self._ended.set()

    def send_signal(self, sig):
        self.signals.append(sig)
        if sig == signal.SIGINT:
            self.end(130)  # what imgclf train answers Ctrl-C with

    def wait(self, timeout=None):
        self._ended.wait(timeout)
        return self.returncode

    def poll(self):
        return self.returncode


@pytest.fixture
def started(monkeypatch):
    """Every FakeProcess the queue starts, in order."""
    made = []

    def popen(command, **kwargs):
        process = FakeProcess(command, **kwargs)
        made.append(process)
        return process

    monkeypatch.setattr(jobs_module.subprocess, "Popen", popen)
    return made


def _status(job, *wanted):
    return wait_until(lambda: job.status in wanted, 10, f"job {job.id} becoming {wanted}")


def test_one_job_at_a_time_the_next_when_it_ends_and_no_progress_bar_in_the_log(tmp_path, started):
    queue_ = Jobs(tmp_path)
    first = queue_.submit_command("train", ["imgclf", "train", "a"])
    second = queue_.submit_command("train", ["imgclf", "train", "b"])
    assert (first.status, second.status, len(started)) == ("running", "queued", 1)
    started[0].say("Epoch 1/2  loss 0.61")
    started[0].say("  3/5 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━  0:00:01")  # a redraw of the progress bar
    started[0].say("")
    started[0].end(0)
    _status(second, "running")
    assert first.status == "finished" and first.returncode == 0 and list(first.log) == ["Epoch 1/2  loss 0.61"]
    assert started[1].command == ["imgclf", "train", "b"]
    started[1].end(2)  # a user's mistake: one line and exit 2
    _status(second, "failed")
    assert second.returncode == 2 and first.to_dict()["status"] == "finished"


def test_stop_drops_a_queued_job_and_interrupts_a_running_one(tmp_path, started):
    queue_ = Jobs(tmp_path)
    running = queue_.submit_command("train", ["imgclf", "train", "a"])
    waiting = queue_.submit_command("train", ["imgclf", "train", "b"])
    after = queue_.submit_command("train", ["imgclf", "train", "c"])
    assert queue_.stop(waiting.id).status == "interrupted"  # never started
    queue_.stop(running.id)
    assert started[0].signals == [signal.SIGINT]
    _status(after, "running")
    assert running.status == "interrupted" and running.returncode == 130
    assert [p.command[-1] for p in started] == ["a", "c"]  # the dropped job never ran
    queue_.shutdown()  # the server stopping: what runs is interrupted, resumable
    assert started[1].signals == [signal.SIGINT]
    _status(after, "interrupted")
    with pytest.raises(Exception, match="no job 99"):
        queue_.stop(99)


def test_a_job_that_cannot_start_fails_with_why_and_the_queue_moves_on(tmp_path, started):
    queue_ = Jobs(tmp_path)
    blocker = queue_.submit_command("train", ["imgclf", "train", "a"])
    missing = queue_.submit_command("triage", ["missing", "x"])
    next_one = queue_.submit_command("triage", ["imgclf", "triage", "y"])
    started[0].end(0)
    _status(next_one, "running")
    assert blocker.status == "finished" and missing.status == "failed" and missing.returncode is None
    assert "could not start" in missing.log[-1] and "No such file or directory" in missing.log[-1]
    assert queue_.latest("triage", "") is next_one


def test_an_output_file_is_written_only_by_a_job_that_succeeds(tmp_path, started):
    out = tmp_path / "inbox" / "sorted.jsonl"
    queue_ = Jobs(tmp_path)
    good = queue_.submit_command("triage", ["imgclf", "triage", '{"n": 1}\n'], output=out)
    started[0].say("Sorting 8 pictures")  # stderr: the log, while stdout goes to the file
    started[0].end(0)
    _status(good, "finished")
    assert out.read_text() == '{"n": 1}\n' and not out.with_name("sorted.jsonl.part").exists()
    assert list(good.log) == ["Sorting 8 pictures"]
    bad = queue_.submit_command("triage", ["imgclf", "triage", "half a li"], output=out)
    started[1].end(1)
    _status(bad, "failed")
    assert out.read_text() == '{"n": 1}\n'  # the last good answer stays
    assert not out.with_name("sorted.jsonl.part").exists()
