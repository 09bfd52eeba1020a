"""A real uvicorn server on a loopback port, Debian's Chromium driven by Playwright, and where screenshots go.

Screenshots are written to ``NUDGE_SCREENSHOT_DIR`` when set (the README uses them), else under the
test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from core.db import Database
from core.settings import Settings
from web.app import create_app
from web.serving import free_port, serving

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server_url(postgres_db: Database) -> Iterator[str]:
    port = free_port()
    settings = Settings(escalation_audience_size=1000, public_base_url=f"http://127.0.0.1:{port}")
    with serving(create_app(settings, database=postgres_db), port) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an event loop running in
    this thread until it stops, and later tests that run their own loop (``asyncio.run``) would fail."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):  # scripts/system-deps.sh installs it: in CI its absence is a failure
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (make setup installs it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[callable]:  # type: ignore[valid-type]
    contexts = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("NUDGE_SCREENSHOT_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
