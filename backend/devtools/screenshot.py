"""Make the README's screenshot: the app's own chat page answering one question.

The app runs on the sample resume with a temporary SQLite file; the answer is streamed
by the stand-in provider (`devtools.fake_llm`), scripted with facts from the sample
resume, and drawn by Debian's Chromium through Playwright (a dev dependency):

    cd backend && uv run python -m devtools.screenshot ../docs/chat.png
"""

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright, expect

from app.core.config import Settings
from app.core.serving import serve
from app.main import create_app
from devtools.fake_llm import Reply, start_fake_llm

QUESTION = "What has Maya worked on recently?"
ANSWER = (
    "Maya is a **Staff Software Engineer at Nordpay AB** in Stockholm, where she leads a "
    "team of six engineers owning the payments ledger and card-authorisation services. "
    "Recent highlights:\n\n"
    "- Moved the ledger from a monolithic PostgreSQL database to an event-sourced ledger "
    "on Kafka, cutting p99 authorisation latency from 420 ms to 95 ms.\n"
    "- Introduced idempotency keys and an outbox pattern across 14 services, reducing "
    "duplicate charges by 98%.\n\n"
    "Before Nordpay she was a senior engineer at Trailhead Logistics in Gothenburg."
)
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))


def words(text: str) -> list[str]:
    """The answer as the provider streams it: one word (with its leading space) a chunk."""
    parts = text.split(" ")
    return [parts[0], *(f" {part}" for part in parts[1:])]


async def shoot(out: Path, width: int, height: int) -> None:
    reply = Reply(tokens=words(ANSWER), first_token_delay=0.2, token_delay=0.01)
    with tempfile.TemporaryDirectory() as scratch:
        async with start_fake_llm(reply) as fake:
            settings = Settings(
                _env_file=None,
                openrouter_base_url=fake.base_url,
                database_url=f"sqlite+aiosqlite:///{scratch}/screenshot.db",
                llm_prompt_price_per_mtok=0,
                llm_completion_price_per_mtok=0,
            )
            async with serve(create_app(settings)) as port, async_playwright() as driver:
                browser = await driver.chromium.launch(
                    executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
                )
                page = await browser.new_page(viewport={"width": width, "height": height})
                await page.goto(f"http://127.0.0.1:{port}/")
                box = page.get_by_label("Your question")
                await box.fill(QUESTION)
                await box.press("Enter")
                await expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=30_000)
                await expect(page.locator(".messages .msg.bot .body")).to_contain_text("Gothenburg")
                await page.screenshot(path=out)
                await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the PNG")
    parser.add_argument("--width", type=int, default=900)
    parser.add_argument("--height", type=int, default=640)
    args = parser.parse_args()
    asyncio.run(shoot(args.out, args.width, args.height))
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
