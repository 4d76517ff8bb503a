"""Run a study: every unfinished stage in order, resumably, one process at a time.

A finished stage (its result file exists) is reused; any other stage runs from its
start, so an interrupted stage (Ctrl-C, ``kill -9``) starts over cleanly: stages write
only into their own result file (atomically), into ``work/`` files they rewrite whole,
and into the registry and datasets folder through their own atomic commits, replacing
what an interrupted attempt left. A failing stage other than the dataset is recorded
(its error in ``state.json``, its traceback in ``study.log``) and the study goes on;
the report shows a row saying why.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from app.compare.budget import get_budget
from app.compare.report import report_stage
from app.compare.services import StudyServices
from app.compare.stages import Context, plan
from app.compare.study import Study
from indexing.errors import RagtuneError

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def run_study(study: Study, services: StudyServices, *, echo: Echo = _quiet) -> dict[str, Any]:
    """Run the study's unfinished stages and write its report; return the report summary.

    ``echo`` gets one line per stage (started, reused, done, failed). Raises
    ``StudyConflict`` when another process runs the study, and the dataset stage's
    ``RagtuneError`` when there is nothing to compare.
    """
    config = study.config
    ctx = Context(study, config, get_budget(config.budget), services)
    stages = plan(config, report_stage)
    study.lock()
    try:
        for stale in study.stages_dir.glob(".*.tmp"):  # a write cut short by kill -9
            stale.unlink(missing_ok=True)
        if any(not study.done(s.name) for s in stages if s.name != "report"):
            try:
                services.check(config.collection)  # before any work: collection and engine
            except RagtuneError:
                if not study.state().stages:  # nothing ever ran: leave no empty study behind
                    study.discard()
                raise
        failed: dict[str, str] = {}
        for number, stage in enumerate(stages, 1):
            where = f"[{number}/{len(stages)}] {stage.name}"
            if stage.name != "report" and study.done(stage.name):
                echo(f"{where}: done earlier, reused")
                continue
            missing = [n for n in stage.needs if n in failed or not study.done(n)]
            if missing:
                reason = failed.get(missing[0], "it did not finish")
                failed[stage.name] = f"needs {missing[0]}, which failed: {reason}"
                study.mark(stage.name, "running")
                study.mark(stage.name, "failed", failed[stage.name])
                echo(f"{where}: skipped ({failed[stage.name]})")
                continue
            echo(f"{where}: running")
            study.mark(stage.name, "running")
            started = time.monotonic()
            try:
                result = stage.run(ctx)
            except KeyboardInterrupt:
                study.mark(
                    stage.name, "interrupted", "interrupted (Ctrl-C); a re-run starts it over"
                )
                raise
            except Exception as exc:  # one arm's failure, even a crash in training, is its row
                message = exc.user_message if isinstance(exc, RagtuneError) else repr(exc)
                study.mark(stage.name, "failed", message)
                study.log(f"{stage.name} failed:\n{traceback.format_exc()}")
                if stage.fatal or stage.name == "report":
                    raise
                failed[stage.name] = message
                echo(f"{where}: failed: {message}")
                continue
            study.finish(stage.name, result)
            echo(f"{where}: done in {time.monotonic() - started:.1f} s")
        return study.result("report")
    finally:
        study.unlock()
