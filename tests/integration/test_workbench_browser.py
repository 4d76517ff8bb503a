"""Browser: the workbench tabs (Documents, Train, Adapters, Evaluate) against the real stack."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import httpx
import pytest

from tests.conftest import REPO
from tests.integration.browser import open_page, wait_text

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def page(stack):
    with open_page(stack.app_url) as page:
        yield page


def running_job(stack) -> dict:
    for path in (stack.data_dir / "jobs").glob("*/job.json"):
        job = json.loads(path.read_text())
        if job["state"] == "running":
            return job
    return {}


def test_upload_a_document_and_see_it_ingested(stack, page, tmp_path):
    note = tmp_path / "lighthouse.md"
    note.write_text(
        "# Lighthouse\n\nThe Skerry lighthouse keeper logs the fog horn every night at 22:00.\n"
    )
    # non-Latin names that an ASCII-only cleaner once saved as one file (issue 15, kind 1)
    cases = REPO / "tests" / "data" / "cases" / "ingest" / "upload_names"
    page.get_by_role("tab", name="Documents").click()
    page.locator('input[type="file"][multiple][accept*=".md"]').first.set_input_files(
        [str(note), *map(str, sorted(cases.glob("*.md")))]
    )
    collection = page.get_by_label("Collection (type a new name to create one)")
    collection.fill("uploads")
    collection.press("Enter")
    page.get_by_role("button", name="Ingest").click()
    summary = wait_text(page.locator("#ingest-summary"), r"added 3", 120)
    assert "uploads" in summary
    page.screenshot(path=str(tmp_path / "documents.png"), full_page=True)
    collections = httpx.get(f"{stack.app_url}/v1/collections", timeout=30).json()["data"]
    assert {c["name"]: c["files"] for c in collections}["uploads"] == 3
    shown = wait_text(
        page.locator("body"), "議事.md", 30
    )  # the per-file table shows the uploaded names
    assert "報告.md" in shown


def test_train_a_lora_from_the_page_watch_it_then_load_it_and_chat(stack, page, tmp_path):
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Adapter name").fill("ui-lora")
    page.get_by_label("Max steps (-1: all epochs)").fill("6")
    page.get_by_label("Batch size").fill("4")
    page.get_by_role("button", name="Start training").click()
    wait_text(page.locator("#train-message"), r"Queued job", 30)
    status = page.locator("#job-status")
    first = wait_text(status, r"step \d+ of 6", 600)
    steps_seen = {int(re.search(r"step (\d+) of", first).group(1))}
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and "succeeded" not in (text := status.inner_text()):
        match = re.search(r"step (\d+) of", text)
        if match:
            steps_seen.add(int(match.group(1)))
        time.sleep(1)
    assert "succeeded" in status.inner_text(), status.inner_text()
    assert len(steps_seen) >= 2, f"the curve never updated: {steps_seen}"
    page.screenshot(path=str(tmp_path / "train.png"), full_page=True)

    page.get_by_role("tab", name="Adapters").click()
    page.get_by_role("button", name="Refresh", exact=True).click()
    wait_text(page.locator("#adapters-table"), r"ui-lora", 30)
    adapter = page.get_by_label("Adapter", exact=True)
    adapter.fill("ui-lora")
    adapter.press("Enter")
    page.get_by_role("button", name="Load into the server").click()
    wait_text(page.locator("#adapter-result"), r"served by vllm", 180)
    assert "ui-lora" in [
        m["id"] for m in httpx.get(f"{stack.engine_url}/models", timeout=30).json()["data"]
    ]

    page.get_by_role("tab", name="Chat").click()
    page.get_by_role("button", name="Refresh lists").click()
    answer_with = page.get_by_label("Answer with (model or adapter)")
    answer_with.fill("ui-lora")
    answer_with.press("Enter")
    box = page.get_by_placeholder("Ask about your documents…")
    box.fill("Which command ingests documents?")
    box.press("Enter")
    bot = page.locator('[data-testid="bot"]').last
    wait_text(bot, r"Sources", 180)
    page.screenshot(path=str(tmp_path / "chat-ui-lora.png"), full_page=True)


def test_a_killed_training_job_is_marked_failed_and_the_app_keeps_serving(stack, page, tmp_path):
    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Adapter name").fill("ui-doomed")
    page.get_by_label("Max steps (-1: all epochs)").fill("200")
    before = page.locator("#train-message").inner_text()  # the last test's "Queued job …"
    page.get_by_role("button", name="Start training").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and page.locator("#train-message").inner_text() == before:
        time.sleep(0.5)
    assert "Queued job" in page.locator("#train-message").inner_text()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not running_job(stack):
        time.sleep(0.5)
    job = running_job(stack)
    assert job and "ui-doomed" in job["title"], f"the job never started: {job}"
    time.sleep(5)  # let it get into model loading
    os.kill(job["pid"], signal.SIGKILL)
    status = wait_text(page.locator("#job-status"), r"failed", 60)
    assert "SIGKILL" in status
    assert httpx.get(f"{stack.app_url}/healthz", timeout=30).status_code == 200
    log = page.get_by_label("Log (tail)").input_value()
    assert log.strip(), "the failed job's log is not shown"
    assert not (stack.data_dir / "adapters" / "ui-doomed").exists()
    page.screenshot(path=str(tmp_path / "killed.png"), full_page=True)


def test_an_evaluation_runs_in_the_background_and_shows_its_report(stack, page, tmp_path):
    page.get_by_role("tab", name="Evaluate").click()
    page.get_by_label("Only the first N items (blank: all)").fill("2")
    page.get_by_role("button", name="Run evaluation").click()
    status = wait_text(page.locator("#eval-status"), r"succeeded", 600)
    assert "eval" in status
    body = page.inner_text("body")
    assert "rouge" in body.lower() or "accuracy" in body.lower(), body[-2000:]
    page.screenshot(path=str(tmp_path / "evaluate.png"), full_page=True)
