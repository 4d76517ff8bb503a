"""A study's folder: its configuration, stage states and one result file per finished stage.

    <compare_dir>/<name>/
        state.json              the configuration and each stage's state (atomic writes)
        stages/<stage>.json     the result of a finished stage (written tmp + rename)
        work/                   files stages make for later ones (SFT data, demonstrations)
        reports/                report.md, report.html, summary.json, *.png
        study.log               tracebacks of failed stages
        .lock                   held (flock) by the process running the study

A stage is finished exactly when its result file exists, and that file only ever
appears whole, so a run stopped by Ctrl-C or ``kill -9`` leaves either a finished
stage or nothing of it: a re-run reuses the first kind and runs the second again.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexing.errors import Conflict, NotFound, RagtuneError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$")


class StudyError(RagtuneError, ValueError):
    """A study request the user can fix (a bad name, a missing data source)."""


class StudyConflict(Conflict):
    """The study exists with other settings, or another process is running it."""


class StudyNotFound(NotFound):
    """No study of that name."""


@dataclass(frozen=True)
class StudyConfig:
    """What a study compares; a re-run must ask for the same to resume.

    Exactly one of ``data`` (a dataset name or a QA pairs file) and ``synth`` (pairs to
    synthesise) is set. ``test_file``: the user's fixed test set (never trained on).
    ``methods``: extra SFT methods (training.methods) trained like the LoRA arm.
    """

    name: str
    collection: str
    data: str = ""
    synth: int = 0
    test_file: str = ""
    methods: tuple[str, ...] = ()
    budget: str = "quick"
    primary_metric: str = "token_f1"
    drop_overlap: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or ".." in self.name:
            raise StudyError(
                f"invalid study name {self.name!r}: up to 41 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if bool(self.data) == bool(self.synth):
            raise StudyError("give the study's data: either --data D or --synth N (not both)")
        if self.synth < 0:
            raise StudyError(f"--synth must be a positive number of pairs, not {self.synth}")

    def check_inputs(self) -> None:
        """Refuse, before a study is opened, inputs that no stage could use: an unknown
        ``--methods`` entry, a ``--test`` file or a path-like ``--data`` that does not
        exist. Raises ``StudyError`` naming the option."""
        from app.compare.arms import trained_adapters

        trained_adapters(self.name, self.methods)
        if self.test_file and not Path(self.test_file).is_file():
            raise StudyError(f"--test {self.test_file}: no such file")
        looks_like_path = "/" in self.data or Path(self.data).suffix in {".jsonl", ".csv"}
        if self.data and looks_like_path and not Path(self.data).is_file():
            raise StudyError(
                f"--data {self.data}: no such file (a dataset is named without a path; "
                "`ragtune data list` shows them)"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["methods"] = list(self.methods)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyConfig:
        """Parse a stored configuration."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["methods"] = tuple(known.get("methods", ()))
        return cls(**known)


@dataclass
class StageState:
    """One stage's state: ``pending``, ``running``, ``done`` or ``failed`` (with ``error``)."""

    state: str = "pending"
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    error: str = ""


@dataclass
class StudyState:
    """The content of ``state.json``."""

    config: dict[str, Any]
    stages: dict[str, StageState] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    pid: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyState:
        """Parse ``state.json``."""
        stages = {k: StageState(**v) for k, v in data.get("stages", {}).items()}
        return cls(data["config"], stages, data.get("created", 0.0), data.get("pid"))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with partial.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


class Study:
    """One study's folder: configuration, stage states and results."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state_path = folder / "state.json"
        self.stages_dir = folder / "stages"
        self.work = folder / "work"
        self.reports = folder / "reports"
        self._lock: int | None = None

    @property
    def name(self) -> str:
        """The study's name (its folder's)."""
        return self.folder.name

    # configuration and state

    @classmethod
    def open(cls, root: Path, config: StudyConfig, *, restart: bool = False) -> Study:
        """The study ``config.name`` under ``root``, created if new.

        An existing study resumes when ``config`` equals the stored one; otherwise
        ``StudyConflict`` names the differences, unless no stage of it has finished (a
        run refused at its first stage, e.g. for leakage): then ``config`` replaces the
        stored one. ``restart`` discards an existing study.
        """
        study = cls(root / config.name)
        if restart and study.folder.exists():
            study.lock()
            shutil.rmtree(study.folder)
            study.unlock()
        if study.state_path.exists():
            state = study.state()
            mine = config.to_dict()
            changed = sorted(k for k in mine if state.config.get(k) != mine[k])
            if changed and not any(s.state == "done" for s in state.stages.values()):
                study.lock()  # StudyConflict while another process runs it
                try:
                    study.save_state(StudyState(mine))
                finally:
                    study.unlock()
            elif changed:
                stored = state.config
                raise StudyConflict(
                    f"study {config.name!r} exists with other settings ("
                    + ", ".join(f"{k}: {stored.get(k)!r} -> {mine[k]!r}" for k in changed)
                    + "); give another --name, or --restart to discard it"
                )
        else:
            study.save_state(StudyState(config.to_dict()))
        return study

    @classmethod
    def existing(cls, root: Path, name: str) -> Study:
        """An existing study; ``StudyNotFound`` listing the known ones otherwise."""
        study = cls(root / name)
        if not study.state_path.exists():
            known = ", ".join(s.name for s in list_studies(root)) or "none yet"
            raise StudyNotFound(f"no study {name!r} (studies: {known})")
        return study

    def state(self) -> StudyState:
        """The stored state."""
        return StudyState.from_dict(json.loads(self.state_path.read_text()))

    @property
    def config(self) -> StudyConfig:
        """The stored configuration."""
        return StudyConfig.from_dict(self.state().config)

    def save_state(self, state: StudyState) -> None:
        """Write ``state.json`` atomically."""
        data = {
            "config": state.config,
            "stages": {k: asdict(v) for k, v in state.stages.items()},
            "created": state.created,
            "pid": state.pid,
        }
        write_atomic(self.state_path, json.dumps(data, indent=1))

    def mark(self, stage: str, state: str, error: str = "") -> None:
        """Record ``stage``'s new state (``running``, ``done``, ``failed``) with timing."""
        current = self.state()
        entry = current.stages.setdefault(stage, StageState())
        now = time.time()
        if state == "running":
            entry.started, entry.finished, entry.seconds = now, None, None
        else:
            entry.finished = now
            entry.seconds = round(now - entry.started, 1) if entry.started else None
        entry.state, entry.error = state, error
        current.pid = os.getpid()
        self.save_state(current)

    # stage results

    def result_path(self, stage: str) -> Path:
        """Where ``stage``'s result file lives."""
        return self.stages_dir / f"{stage}.json"

    def done(self, stage: str) -> bool:
        """True when ``stage`` finished (its result file exists)."""
        return self.result_path(stage).exists()

    def result(self, stage: str) -> dict[str, Any] | None:
        """``stage``'s result, or None when it has not finished."""
        path = self.result_path(stage)
        return json.loads(path.read_text()) if path.exists() else None

    def finish(self, stage: str, result: dict[str, Any]) -> None:
        """Write ``stage``'s result file atomically and mark it done."""
        write_atomic(self.result_path(stage), json.dumps(result, indent=1, ensure_ascii=False))
        self.mark(stage, "done")

    def log(self, text: str) -> None:
        """Append to ``study.log``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "study.log").open("a", encoding="utf-8") as handle:
            handle.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}\n")

    # one process at a time

    def lock(self) -> None:
        """Hold the study's lock; ``StudyConflict`` when another process runs it.

        An flock dies with its process, so a study killed with ``kill -9`` is free again.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise StudyConflict(
                f"study {self.name!r} is being run by another process; wait for it to finish"
            ) from None
        self._lock = handle

    def discard(self) -> None:
        """Remove the study's folder (its lock, if held, goes with the process)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def is_running(self) -> bool:
        """True while a process holds the study's lock (runs it)."""
        try:
            self.lock()
        except StudyConflict:
            return True
        self.unlock()
        return False

    def unlock(self) -> None:
        """Release the lock taken by ``lock``."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def default_study_name(collection: str, data: str, synth: int, budget: str) -> str:
    """The study name a request implies (collection, data source, budget), so that running
    the same request again resumes the same study."""
    source = f"synth{synth}" if synth else Path(data).stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{collection}-{source}-{budget}").strip("-.")
    return name[:41].rstrip("-.") or "study"


def list_studies(root: Path) -> list[Study]:
    """Every study under ``root``, newest first."""
    if not root.exists():
        return []
    studies = [Study(p.parent) for p in root.glob("*/state.json")]
    return sorted(studies, key=lambda s: s.state_path.stat().st_mtime, reverse=True)
