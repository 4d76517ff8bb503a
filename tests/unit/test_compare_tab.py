"""The Compare tab's pieces: the queued command per data source, stage progress, the
report shown in the page, past studies, and the tab in the built app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.compare.run import run_study
from app.compare.study import Study, StudyError
from app.jobs import JobStore
from app.ui.compare_tab import (
    SOURCES,
    report_html,
    stage_table,
    studies_table,
    submit_study,
)
from tests.unit.test_compare import Fakes, config


def test_each_data_source_queues_the_matching_compare_command(make_settings, tmp_path):
    settings = make_settings()
    jobs = JobStore(settings.jobs_dir)
    job_id, study = submit_study(
        jobs, settings, collection="docs", source=SOURCES[0], n=200, budget="quick"
    )
    command = jobs.get(job_id).command
    assert " ".join(command[1:]) == (
        "compare --collection docs --synth 200 --budget quick --primary-metric token_f1 "
        "--name docs-synth200-quick --json"
    )
    assert study == "docs-synth200-quick" and jobs.get(job_id).kind == "compare"
    pairs = tmp_path / "my pairs.jsonl"
    pairs.write_text('{"question": "q?", "answer": "a"}\n')
    job_id, _ = submit_study(
        jobs,
        settings,
        collection="docs",
        source=SOURCES[1],
        upload=str(pairs),
        methods=["ia3"],
        budget="tiny",
        name="mine",
    )
    command = jobs.get(job_id).command
    stored = command[command.index("--data") + 1]
    assert stored.startswith(str(settings.dataset_uploads_dir)) and Path(stored).read_text()
    assert command[command.index("--methods") + 1] == "ia3" and "mine" in command
    job_id, _ = submit_study(jobs, settings, collection="docs", source=SOURCES[2], dataset="d1")
    assert jobs.get(job_id).command[4:6] == ["--data", "d1"]


def test_missing_inputs_are_named_before_anything_is_queued(make_settings):
    settings = make_settings()
    jobs = JobStore(settings.jobs_dir)
    with pytest.raises(StudyError, match="collection"):
        submit_study(jobs, settings, collection="", source=SOURCES[0], n=5)
    with pytest.raises(StudyError, match="upload"):
        submit_study(jobs, settings, collection="docs", source=SOURCES[1])
    with pytest.raises(StudyError, match="dataset"):
        submit_study(jobs, settings, collection="docs", source=SOURCES[2])
    assert jobs.list() == []


def test_stage_progress_the_report_and_past_studies_come_from_the_study_folder(tmp_path):
    root = tmp_path / "compare"
    study = Study.open(root, config())
    assert "Stages done: 0 of 14" in stage_table(study) and report_html(study) == ""
    assert "| train-raft | pending |" in stage_table(study)
    study.mark("dataset", "running")  # and the process is gone (cancelled or killed)
    assert "| dataset | stopped (run the study again to resume) |" in stage_table(study)
    study.lock()  # a live run
    assert "| dataset | running |" in stage_table(study)
    study.unlock()
    run_study(study, Fakes(tmp_path).services())
    table = stage_table(study)
    assert "| answer-rag+raft | done |" in table and "Stages done: 14" in table
    shown = report_html(study)
    assert "<h2>Recommendation: rag+raft</h2>" in shown and "data:image/png" in shown
    assert "<style>" not in shown and "<body>" not in shown  # no page-wide CSS
    rows = studies_table(root)
    assert rows[0][:5] == ["s1", "docs", "quick", "14/14", "rag+raft"]
    json.loads(study.result_path("report").read_text())


def test_the_app_has_the_compare_tab(make_settings):
    from fastapi.testclient import TestClient

    from app.server import create_app

    client = TestClient(create_app(make_settings(generator={"mode": "fake"})))
    config_ = client.get("/config").json()
    labels = {c.get("props", {}).get("label") for c in config_["components"]}
    assert {"Pairs to synthesise", "Budget", "Show study"} <= labels
    assert '"Compare"' in json.dumps(config_)
