"""Swagger UI (`/docs`) and ReDoc (`/redoc`) render in Chromium with every other host cut off.

Each request the pages make to anything but the app is aborted and recorded: the pages
must render all the same, and must not have tried.
"""

import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import BrowserContext, Page, Route, async_playwright, expect

from tests.conftest import SettingsFactory
from tests.support.app import running_app

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)",
)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The pages are about the schema, not storage: SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


async def offline_page(context: BrowserContext, elsewhere: list[str]) -> Page:
    """A page whose requests to any host but 127.0.0.1 fail, as on a closed network."""

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_loopback)
    return await context.new_page()


@pytest.fixture
async def context() -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield await browser.new_context(viewport={"width": 1280, "height": 900})
        finally:
            await browser.close()


async def test_swagger_ui_and_redoc_render_with_no_other_host(
    context: BrowserContext, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    elsewhere: list[str] = []
    errors: list[str] = []
    page = await offline_page(context, elsewhere)
    page.on("pageerror", lambda error: errors.append(str(error)))
    async with running_app(make_settings()) as port:
        await page.goto(f"http://127.0.0.1:{port}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Resume Chatbot")
        socket = page.locator("#operations-websocket-websocket_protocol_ws_get")
        await socket.locator(".opblock-summary").click()
        parameters = socket.locator(".parameters .parameter__name")
        await expect(parameters).to_contain_text(["session_id", "last_seq"])
        await expect(socket).to_contain_text("upgrade_required")
        paths = page.locator(".opblock-summary-path")
        await expect(paths.filter(has_text="/api/ui/chat")).to_have_count(2)
        await expect(paths.filter(has_text="/v1/chat/completions")).to_be_visible()
        await page.screenshot(path=tmp_path / "swagger.png")

        await page.goto(f"http://127.0.0.1:{port}/redoc")
        await expect(page.locator("h1")).to_contain_text("Resume Chatbot", timeout=30_000)
        await expect(page.get_by_role("heading", name="Ask a question")).to_be_visible()
        await expect(page.locator("body")).to_contain_text("4000 characters")
        await page.screenshot(path=tmp_path / "redoc.png")

    assert elsewhere == []
    assert errors == []
