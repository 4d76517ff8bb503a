"""Background jobs: queued one at a time in subprocesses, cancel, kill -9, restart recovery."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from app.jobs import JobError, JobRunner, JobStore
from tests.helpers import wait_for


def script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_jobs_run_one_at_a_time_and_keep_output(tmp_path):
    store = JobStore(tmp_path / "jobs")
    first = store.submit(
        "train",
        "first",
        script(
            "import time, sys; print('step 1', file=sys.stderr); time.sleep(1); "
            "print('{\"ok\": 1}')"
        ),
    )
    second = store.submit("train", "second", script("print('{\"ok\": 2}')"))
    runner = JobRunner(store, poll_s=0.1).start()
    assert wait_for(lambda: store.get(first.id).state == "running")
    assert store.get(second.id).state == "queued" and [j.id for j in store.queued()] == [second.id]
    assert wait_for(lambda: store.get(second.id).state == "succeeded")
    runner.stop()
    assert store.result(first.id) == {"ok": 1} and "step 1" in store.log_tail(first.id)
    with pytest.raises(JobError, match="already succeeded"):
        store.cancel(first.id)


def test_a_killed_job_is_failed_with_its_log_and_the_next_job_still_runs(tmp_path):
    store = JobStore(tmp_path / "jobs")
    victim = store.submit(
        "train",
        "victim",
        script("import time, sys; print('loading', file=sys.stderr, flush=True); time.sleep(60)"),
    )
    after = store.submit("train", "after", script("print('{}')"))
    runner = JobRunner(store, poll_s=0.1).start()
    assert wait_for(
        lambda: store.get(victim.id).state == "running" and "loading" in store.log_tail(victim.id)
    )
    os.kill(store.get(victim.id).pid, signal.SIGKILL)
    assert wait_for(lambda: store.get(victim.id).state == "failed")
    assert "SIGKILL" in store.get(victim.id).error and "loading" in store.log_tail(victim.id)
    assert "running:" in store.log_tail(
        victim.id
    ) and "failed: the process was killed by SIGKILL" in store.log_tail(victim.id)
    assert wait_for(lambda: store.get(after.id).state == "succeeded")
    runner.stop()


def test_cancel_stops_a_running_job(tmp_path):
    store = JobStore(tmp_path / "jobs")
    job = store.submit("train", "long", script("import time; time.sleep(60)"))
    runner = JobRunner(store, poll_s=0.1).start()
    assert wait_for(lambda: store.get(job.id).state == "running")
    pid = store.get(job.id).pid
    assert store.cancel(job.id).state == "cancelled"
    assert wait_for(lambda: process_gone(pid))
    runner.stop()


def process_gone(pid: int) -> bool:
    """True once `pid` has exited or is a zombie (it may vanish between checks)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between open and read (CI, stop 21)
        return True


def test_after_a_restart_a_running_job_without_process_is_failed(tmp_path):
    store = JobStore(tmp_path / "jobs")
    job = store.submit("train", "orphan", ["true"])
    job.state, job.pid = "running", 2**22 + 12345  # no such process
    store.save(job)
    JobStore(tmp_path / "jobs").recover()
    recovered = store.get(job.id)
    assert recovered.state == "failed" and "ended" in recovered.error
