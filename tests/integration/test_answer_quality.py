"""First answers with the default settings do not loop and do not recite the instruction.

The QA suite's 40 questions in RAG mode go through `ragtune eval run` (the chat service,
its penalties and loop guard) against the real stack; the chat question of issue 15 goes
through the Gradio chat in headless Chromium. Metrics: evals/metrics/degeneration.py;
the numbers behind the defaults: docs/answer-quality.md.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from app.prompting import RAG_INSTRUCTION
from app.settings import PromptingSettings
from evals.metrics.degeneration import degenerate, degeneration_rate, distinct_4gram_ratio, echoes
from tests.conftest import REPO
from tests.integration.conftest import RAGTUNE
from tests.integration.test_browser import browser  # noqa: F401 (the headless Chromium fixture)

pytestmark = pytest.mark.integration

QUESTION = "How do I point ragtune at a vLLM server on another machine?"
INSTRUCTION = f"{PromptingSettings().system_prompt}\n\n{RAG_INSTRUCTION}"


def test_qa_suite_answers_in_rag_mode_do_not_degenerate(stack, tmp_path):
    variants = tmp_path / "variants.yaml"
    # every RAG setting (collection, retriever, k) at its default
    variants.write_text("variants:\n  rag-defaults: {mode: rag}\n")
    env = {k: v for k, v in stack.env.items() if k != "RAGTUNE_GENERATOR__SEED"}  # shipped: no seed
    args = [
        "eval",
        "run",
        "--suite",
        "evals/suites/qa_docs.yaml",
        "--variants",
        "rag-defaults",
        "--variants-file",
        str(variants),
        "--output",
        str(tmp_path / "report"),
        "--json",
    ]
    run = {"env": env, "cwd": REPO, "capture_output": True, "text": True, "timeout": 900}
    result = subprocess.run([RAGTUNE, *args], check=False, **run)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "report" / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 40 and not [r["error"] for r in records if r["error"]]
    answers = [r["answer"] for r in records]
    looping = [(round(distinct_4gram_ratio(a), 2), a[:200]) for a in answers if degenerate(a)]
    assert degeneration_rate(answers) <= 0.02, looping
    recited = [a[:200] for a in answers if echoes(a, INSTRUCTION)]
    assert len(recited) <= 1, recited


@pytest.mark.browser
def test_default_chat_answers_the_first_question_without_looping(stack, browser, tmp_path):  # noqa: F811
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(stack.app_url)
    box = page.get_by_placeholder("Ask about your documents…")
    box.fill(QUESTION)
    box.press("Enter")
    bot = page.locator('[data-testid="bot"]').last
    bot.wait_for(timeout=60_000)
    for _ in range(1200):  # the sources are shown once the answer has finished
        if "Sources" in bot.inner_text():
            break
        page.wait_for_timeout(100)
    final = bot.inner_text()
    page.screenshot(path=str(tmp_path / "first-answer.png"), full_page=True)
    assert "Sources" in final, final
    answer = final.split("Sources")[0].strip()
    assert len(answer.split()) >= 3, answer
    assert not degenerate(answer), answer
    assert not echoes(answer, INSTRUCTION), answer
