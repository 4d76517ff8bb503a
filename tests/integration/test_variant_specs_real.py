"""Variant specs and batch answers on the real stack: the API, eval run, ask --file, the A/B tab."""

from __future__ import annotations

import json
import shutil

import openai
import pytest

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "How do I ingest a folder of documents?"}]


def test_the_api_answers_spec_models_and_names_a_bad_option(client):
    reply = client.chat.completions.create(
        model="rag:docs@k=2@retriever=bm25", messages=QUESTION, max_tokens=40, temperature=0
    )
    assert reply.choices[0].message.content.strip()
    assert len(reply.model_extra["sources"]) == 2
    few = client.chat.completions.create(
        model="few-shot@shots=2", messages=QUESTION, max_tokens=40, temperature=0
    )
    assert few.choices[0].message.content.strip() and few.usage.prompt_tokens > 60
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="rag:docs@k=0", messages=QUESTION)
    assert caught.value.body["param"] == "model" and "@k=0" in caught.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="rag:nope@k=2", messages=QUESTION)


def test_eval_run_takes_specs_and_a_qa_file_and_ask_file_keeps_order(stack, tmp_path):
    qa = tmp_path / "qa.jsonl"
    rows = [
        {"question": "Which command ingests documents?", "answer": "ragtune ingest"},
        {"question": "Where do votes go?", "answer": "SQLite", "source": "docs/evaluation.md"},
        {"question": "What does --prune do?", "answer": "It removes files gone from disk."},
    ]
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows) + "broken line\n")
    out = tmp_path / "report"
    specs = "zero-shot,rag:docs@k=2@retriever=bm25,few-shot@shots=1"
    result = stack.ragtune(
        "eval", "run", "--data", str(qa), "--variants", specs, "-o", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{qa}, line 4" in result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert list(summary["variants"]) == specs.split(",")
    assert all(v["errors"] == 0 for v in summary["variants"].values())
    questions = tmp_path / "q.jsonl"
    asked = [r["question"] for r in rows] * 2
    questions.write_text("".join(json.dumps({"question": q}) + "\n" for q in asked))
    answers = tmp_path / "a.jsonl"
    result = stack.ragtune(
        "ask", "--file", str(questions), "-c", "docs", "-o", str(answers), "--concurrency", "4"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in answers.read_text().splitlines()]
    assert [r["question"] for r in records] == asked and all(r["answer"] for r in records)


@pytest.mark.browser
def test_the_ab_tab_compares_two_typed_specs(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.goto(stack.app_url)
        page.get_by_role("tab", name="A/B").click()
        page.get_by_label("Blind (hide names until the vote)").uncheck()
        page.get_by_label("or a spec for A").fill("rag:docs@k=2@retriever=bm25")
        page.get_by_label("or a spec for B").fill("few-shot@shots=1")
        page.get_by_label("Question").fill("Which command ingests documents?")
        page.get_by_role("button", name="Ask both").click()
        status = page.locator("#arena-status")
        status.get_by_text("Vote below").wait_for(timeout=180_000)
        body = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "ab-specs.png"), full_page=True)
        browser.close()
    assert "A: rag:docs@k=2@retriever=bm25" in body and "B: few-shot@shots=1" in body
