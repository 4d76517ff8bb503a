"""Background jobs (training, evaluation) for the workbench: queued, one at a time, in subprocesses.

Each job is a ``ragtune`` CLI command run in its own process, so a crash or an
out-of-memory kill in training never takes the web server down. Its state lives in
``<jobs_dir>/<id>/job.json`` (``Settings.jobs_dir``, ``<data_dir>/jobs``) with the process
output beside it (``output.log``, ``result.json``), so a page reload or an app restart shows
queued, running, finished and failed jobs with their logs. On these 2-core machines one
heavy job runs at a time; the rest wait in a visible queue.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexing.errors import RagtuneError

RAGTUNE = str(Path(sys.executable).with_name("ragtune"))
FINISHED = ("succeeded", "failed", "cancelled")


class JobError(RagtuneError, ValueError):
    """A job request the user can fix (unknown job, cancel of a finished job)."""


@dataclass
class Job:
    """One background command and what became of it."""

    id: str
    kind: str
    title: str
    command: list[str]
    run_name: str = ""
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    returncode: int | None = None
    error: str = ""

    @property
    def done(self) -> bool:
        """True once the job can no longer change."""
        return self.state in FINISHED


class JobStore:
    """Jobs on disk under ``root``; safe to read from the web threads while the runner writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, job_id: str) -> Path:
        """The folder of one job."""
        if not job_id.isalnum():
            raise JobError(f"invalid job id {job_id!r}")
        return self.root / job_id

    def save(self, job: Job) -> None:
        """Write the job's state atomically."""
        with self.lock:
            folder = self.folder(job.id)
            folder.mkdir(exist_ok=True)
            partial = folder / "job.json.part"
            partial.write_text(json.dumps(asdict(job), indent=1))
            partial.replace(folder / "job.json")

    def submit(self, kind: str, title: str, command: list[str], run_name: str = "") -> Job:
        """Queue a command; it runs when the jobs before it are done."""
        job = Job(
            id=uuid.uuid4().hex[:12], kind=kind, title=title, command=command, run_name=run_name
        )
        self.save(job)
        return job

    def get(self, job_id: str) -> Job:
        """One job by id."""
        path = self.folder(job_id) / "job.json"
        if not path.exists():
            raise JobError(f"no job {job_id!r}")
        with self.lock:
            return Job(**json.loads(path.read_text()))

    def list(self) -> list[Job]:
        """Every job, newest first."""
        jobs = []
        for path in self.root.glob("*/job.json"):
            try:
                jobs.append(self.get(path.parent.name))
            except (JobError, ValueError, TypeError):
                continue
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def queued(self) -> list[Job]:
        """Jobs waiting to run, oldest first."""
        return sorted((j for j in self.list() if j.state == "queued"), key=lambda j: j.created)

    def log_tail(self, job_id: str, lines: int = 40) -> str:
        """The last lines of the job's output (progress bars reduced to their last state)."""
        path = self.folder(job_id) / "output.log"
        if not path.exists():
            return ""
        text = path.read_text(errors="replace")[-200_000:]
        cleaned = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
        return "\n".join(cleaned[-lines:])

    def result(self, job_id: str) -> Any:
        """The command's JSON output, if it finished with one."""
        path = self.folder(job_id) / "result.json"
        try:
            return json.loads(path.read_text()) if path.exists() else None
        except ValueError:
            return None

    def cancel(self, job_id: str) -> Job:
        """Stop a queued or running job; a finished one is refused with its state."""
        with self.lock:
            job = self.get(job_id)
            if job.done:
                raise JobError(f"job {job.title!r} already {job.state}; nothing to cancel")
            if job.state == "running" and job.pid:
                _kill_group(job.pid)
            job.state, job.finished, job.error = "cancelled", time.time(), "cancelled by the user"
            self.save(job)
            return job

    def recover(self) -> None:
        """After an app restart: a 'running' job whose process is gone has failed."""
        for job in self.list():
            if job.state == "running" and not (job.pid and _alive(job.pid)):
                job.state, job.finished = "failed", time.time()
                job.error = job.error or "the job's process ended while the app was not watching it"
                self.save(job)


class JobRunner:
    """Runs queued jobs one at a time in a background thread of the web process."""

    def __init__(
        self,
        store: JobStore,
        env: dict[str, str] | None = None,
        poll_s: float = 1.0,
        cwd: Path | None = None,
    ) -> None:
        self.store = store
        self.env = env
        self.cwd = cwd
        self.poll_s = poll_s
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> JobRunner:
        """Recover after a restart and start watching the queue."""
        self.store.recover()
        self.thread = threading.Thread(target=self._loop, name="ragtune-jobs", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (running jobs keep their process)."""
        self.stopping.set()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            queued = self.store.queued()
            if queued:
                self._run(queued[0])
            else:
                self.stopping.wait(self.poll_s)

    def _run(self, job: Job) -> None:
        folder = self.store.folder(job.id)
        with (folder / "output.log").open("ab") as log, (folder / "result.json").open("wb") as out:
            with self.store.lock:
                if self.store.get(job.id).state != "queued":  # cancelled meanwhile
                    return
                log.write(_log_line(f"running: {shlex.join(job.command)}"))
                log.flush()
                process = subprocess.Popen(
                    job.command,
                    stdout=out,
                    stderr=log,
                    env=self.env,
                    cwd=self.cwd,
                    start_new_session=True,
                )
                job.state, job.started, job.pid = "running", time.time(), process.pid
                self.store.save(job)
            returncode = process.wait()
        with self.store.lock:
            current = self.store.get(job.id)
            if current.state == "cancelled":
                return
            current.returncode, current.finished = returncode, time.time()
            if returncode == 0:
                current.state = "succeeded"
            else:
                current.state = "failed"
                current.error = _failure(returncode, self.store.log_tail(job.id, 200))
            with (folder / "output.log").open(
                "ab"
            ) as log:  # before the state, so readers of a finished job see it
                log.write(
                    _log_line(current.state + (f": {current.error}" if current.error else ""))
                )
            self.store.save(current)


def _log_line(text: str) -> bytes:
    """A line the runner itself adds to a job's log, told apart from the job's own output."""
    return f"[ragtune] {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n".encode()


def _failure(returncode: int, log: str) -> str:
    """Why a job failed, in a sentence: its 'error:' line, or the signal that killed it."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the process was killed by {name}{hint}"
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    return errors[-1] if errors else f"exited with code {returncode}; see the log"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
