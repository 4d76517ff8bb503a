"""Browser: headless Chromium (Debian's) drives the Gradio chat against the real stack."""

from __future__ import annotations

import shutil

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def test_chat_streams_an_answer_with_sources(stack, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(stack.app_url)
    box = page.get_by_placeholder("Ask about your documents…")
    box.fill("What does the --prune option of ragtune ingest do?")
    box.press("Enter")
    bot = page.locator('[data-testid="bot"]').last
    bot.wait_for(timeout=60_000)
    streamed = []
    for _ in range(600):  # see the text grow before the sources arrive
        text = bot.inner_text()
        streamed.append(len(text))
        if "Sources" in text:
            break
        page.wait_for_timeout(100)
    final = bot.inner_text()
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    assert "Sources" in final and "ingestion.md" in final
    answer = final.split("Sources")[0].strip()
    assert answer
    assert len(set(streamed)) > 2, "the answer did not stream"


def test_blind_ab_vote_updates_the_leaderboard(stack, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1300, "height": 1100})
    page.goto(stack.app_url)
    page.get_by_role("tab", name="A/B").click()
    page.get_by_label("Question").fill("Which command ingests documents?")
    page.get_by_role("button", name="Ask both").click()
    status = page.locator("#arena-status")
    status.get_by_text("Vote below").wait_for(timeout=180_000)
    names = ("zero-shot", "few-shot", "rag")
    body = page.inner_text("body")
    assert not any(f"A: {n}" in body or f"B: {n}" in body for n in names)  # blind until the vote
    page.get_by_role("button", name="A is better").click()
    status.get_by_text("Vote recorded").wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert any(f"A: {n}" in body for n in names)  # revealed after the vote
    page.get_by_role("tab", name="Leaderboard").click()
    board = page.locator("#leaderboard")
    for _ in range(60):  # the table refreshes after the vote; wait until it shows both variants
        text = board.inner_text()
        shown = [name for name in names if name in text]
        if len(shown) == 2:
            break
        page.wait_for_timeout(500)
    assert len(shown) == 2, text
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
