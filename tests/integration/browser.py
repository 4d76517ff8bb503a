"""Shared pieces of the browser tests: a headless Chromium page and a text wait."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def open_page(url: str, *, height: int = 1200) -> Iterator:
    """A headless Chromium page on ``url`` (1400 x ``height`` px), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": height})
        page.goto(url)
        yield page
        browser.close()


def wait_text(locator, pattern: str, timeout_s: float, *, poll_s: float = 0.5) -> str:
    """Poll a locator's visible text until it matches ``pattern``; its text, or AssertionError."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = locator.inner_text()
        if re.search(pattern, text):
            return text
        time.sleep(poll_s)
    raise AssertionError(f"{pattern!r} did not appear; last text: {text[-1500:]}")
