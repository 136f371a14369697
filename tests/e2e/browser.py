"""The machine's Chromium driven by Playwright, and where screenshots go; shared by browser tests.

The browser is the one ``tests.chromium`` finds (``$CHROMIUM``, the PATH, Playwright's
own), launched with the flags that keep it off the network. None found is an error,
never a skip: ``make test`` installs one first.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.chromium import find_chromium
from tests.helpers import ROOT

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def artifacts_folder(name: str) -> Path:
    folder = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "artifacts") / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def browser_page(monkeypatch, *, timeout_ms: int = 15_000, **context_options):
    """A fresh page in a new headless Chromium; ``context_options`` go to new_context."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if not executable:
        pytest.fail("no Chromium found ($CHROMIUM, PATH, Playwright's browsers): "
                    "`make test` installs one, or set CHROMIUM")
    # Playwright's sync API keeps an event loop in this thread; the ORM calls in the
    # test body are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(**context_options)
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        try:
            yield page
        finally:
            context.close()
            browser.close()
