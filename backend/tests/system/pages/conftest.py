"""What the browser tests share: one Chromium per module, a fresh page per test, and the
app on SQLite with the loopback fake LLM, all on the module's event loop.

Debian's Chromium is driven by Playwright (nothing is downloaded). Screenshots go to a
temporary directory, or to tests/screenshots/ with SAVE_SCREENSHOTS=1.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page

from devtools.fake_llm import FakeLLM, start_fake_llm
from tests.support.browser import DESKTOP, chromium

SCREENSHOTS = Path(__file__).parents[2] / "screenshots"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The pages are what is tested here (the database is tested in tests/api): SQLite."""
    return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


@pytest_asyncio.fixture(loop_scope="module")
async def fake_llm() -> AsyncIterator[FakeLLM]:
    """As in tests/conftest.py, but on the module's loop."""
    async with start_fake_llm() as fake:
        yield fake


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh desktop-sized page; any uncaught script error fails the test."""
    context = await browser.new_context(viewport=DESKTOP)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")
