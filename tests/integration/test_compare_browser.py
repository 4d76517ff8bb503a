"""Browser: a small study from the Compare tab against the real stack (vLLM engine, the
default model, the docs collection), with the tiny budget: the report renders in the page."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import REPO
from tests.integration.browser import open_page
from tests.integration.browser import wait_text as _wait_text

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def page(stack):
    with open_page(stack.app_url, height=1400) as page:
        yield page


def wait_text(locator, pattern: str, timeout_s: float) -> str:
    """Poll a locator's visible text (each second) until it matches ``pattern``."""
    return _wait_text(locator, pattern, timeout_s, poll_s=1)


def test_a_small_study_runs_from_the_compare_tab_and_its_report_renders(stack, page, tmp_path):
    pairs = tmp_path / "docs-pairs.jsonl"
    with pairs.open("w") as handle:
        for line in (REPO / "evals" / "datasets" / "qa_docs.jsonl").read_text().splitlines():
            item = json.loads(line)
            record = {"question": item["question"], "answer": item["reference"]}
            handle.write(json.dumps({**record, "source": item["relevant"][0]}) + "\n")
    page.get_by_role("tab", name="Compare").click()
    collection = page.locator("#compare-collection input")
    collection.fill("docs")
    collection.press("Enter")
    page.get_by_label("upload pairs").check()
    page.locator('input[type="file"][accept*=".csv"]:not([accept*=".tsv"])').first.set_input_files(
        str(pairs)
    )
    page.get_by_label("tiny").check()
    page.get_by_label("Study name (blank: from the inputs)").fill("ui-study")
    time.sleep(2)  # the upload reaches the server
    page.get_by_role("button", name="Run study").click()
    wait_text(page.locator("#compare-status"), r"Queued study ui-study", 30)
    wait_text(page.locator("#compare-stages"), r"answer-zero-shot", 900)
    status = wait_text(page.locator("#compare-status"), r"succeeded|failed", 1800)
    assert "succeeded" in status, status
    report = wait_text(page.locator("#compare-report"), r"Recommendation", 60)
    for arm in ("zero-shot", "few-shot", "rag", "lora", "rag+lora", "rag+raft"):
        assert re.search(rf"^{re.escape(arm)}\t(ok|failed)", report, re.MULTILINE), (arm, report)
    assert "Forgetting" in report and "Cost" in report
    assert page.locator("#compare-report img").count() >= 2
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    summary = json.loads(
        (stack.data_dir / "compare" / "ui-study" / "reports" / "summary.json").read_text()
    )
    assert summary["recommendation"]["arm"], summary["recommendation"]
    page.locator("#compare-refresh").click()
    wait_text(page.locator("body"), r"ui-study", 30)
