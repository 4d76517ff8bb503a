"""Workbench logic without a browser: form validation, job submission, uploads in
the Documents tab."""

from __future__ import annotations

import json

import pytest

from app.jobs import JobStore
from app.server import REPO
from app.ui.documents_tab import ingest_files
from app.ui.train_tab import RECIPES, recipe_values, submit_training
from training.config import ConfigError
from training.data import DatasetError


def test_every_recipe_fills_the_form_from_its_bundled_config():
    for label in RECIPES:
        values = recipe_values(label, REPO)
        assert values["name"] and values["dataset"], label


def test_out_of_range_hyperparameters_are_refused_with_the_range(tmp_path):
    store = JobStore(tmp_path / "jobs")
    with pytest.raises(
        ConfigError, match=r"learning_rate=5.0 is outside the allowed range 1e-07..1.0"
    ):
        submit_training(store, REPO, "sft / lora", {"name": "x", "learning_rate": 5.0})
    assert store.list() == []


def test_a_bad_dataset_is_refused_with_its_line_before_the_job_starts(tmp_path):
    store = JobStore(tmp_path / "jobs")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "hi", "output": "hello"}\n{"instruction": "no output"}\n')
    with pytest.raises(DatasetError, match="line 2"):
        submit_training(store, REPO, "sft / lora", {"name": "x", "dataset": str(bad)})
    assert store.list() == []


def test_a_valid_form_queues_the_cli_command(tmp_path):
    store = JobStore(tmp_path / "jobs")
    job_id = submit_training(
        store, REPO, "dpo", {"name": "ui-dpo", "max_steps": 3.0, "learning_rate": 0.0001}
    )
    job = store.get(job_id)
    assert job.state == "queued" and job.run_name == "ui-dpo"
    assert job.command[1:4] == ["train", "dpo", "--config"] and "max_steps=3" in job.command
    assert 'name="ui-dpo"' in job.command


def test_documents_tab_refuses_bad_uploads_and_ingests_the_rest(make_settings, embedder, tmp_path):
    from app.components import build_ingest_pipeline
    from app.uploads import upload_path

    settings = make_settings()
    good, bad = tmp_path / "note.md", tmp_path / "tool.exe"
    good.write_text("# Note\n\nKites fly in steady wind.\n")
    bad.write_bytes(b"MZ")
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    summary, rows = ingest_files(
        pipeline, settings, [str(good), str(bad)], "", "notes", "structure"
    )
    assert "added 1" in summary and "failed 1" in summary
    assert {r[0]: r[1] for r in rows} == {"tool.exe": "failed", "note.md": "added"}
    assert upload_path(settings.uploads_dir, "notes", "note.md").exists()


def test_the_app_builds_every_tab(make_settings):
    from fastapi.testclient import TestClient

    from app.server import create_app

    client = TestClient(create_app(make_settings(generator={"mode": "fake"})))
    config = client.get("/config").json()
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"Method", "Suite", "Per-file result"} <= labels
    assert json.dumps(config).count('"Adapters"') >= 1


def test_documents_tab_browsing_a_collection_of_another_embedder_warns(
    make_settings, embedder, tmp_path
):
    from types import SimpleNamespace

    import gradio as gr

    from app.components import build_ingest_pipeline
    from app.ui.documents_tab import build_documents_tab

    settings = make_settings()
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nKites fly in steady wind.\n")
    real = build_ingest_pipeline(settings, embedder=embedder)
    ingest_files(real, settings, [str(note)], "", "notes", "structure")
    other = SimpleNamespace(store=real.store, embedder=SimpleNamespace(name="another-model"))
    with gr.Blocks() as demo:
        build_documents_tab(lambda: other, settings, lambda: ["notes"])
    fns = {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn}
    rows, _, status = fns["show_collection"]("notes")
    assert rows == [] and status.startswith("⚠️") and "another-model" in status
    assert fns["show_chunks"]("notes", "note.md").startswith("⚠️")
    rows, _, status = fns["show_collection"]("nowhere")
    assert rows == [] and status == gr.update()


def test_the_train_tab_follows_the_log_a_training_run_writes(tmp_path):
    import time
    from types import SimpleNamespace

    from app.ui.train_tab import job_progress
    from training.config import SFTArgs
    from training.registry import AdapterRegistry
    from training.run import TrainingRun

    runs = tmp_path / "runs"
    args = SFTArgs(name="r", dataset=str(tmp_path / "unread.jsonl"))
    with TrainingRun(args, AdapterRegistry(tmp_path / "adapters"), runs) as run:
        run.start_log().add(3, 10, {"loss": 1.5})
    job = SimpleNamespace(title="sft", state="running", error="", run_name="r")
    job.started = time.time() - 5
    status, curve = job_progress(JobStore(tmp_path / "jobs"), runs, job)
    assert "step 3 of 10" in status and curve.to_dict("records") == [
        {"step": 3, "metric": "loss", "value": 1.5}
    ]
