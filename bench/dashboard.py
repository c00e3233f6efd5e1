"""The owner's dashboard under data, from backend/: `uv run python ../bench/dashboard.py`.

Seeds a throwaway PostgreSQL database with N conversations (default 10,000, three
questions each on average), serves the app as `uvicorn app.main:app` with ADMIN_TOKEN,
and prints:

- the page's weight: bytes of the HTML, CSS and JavaScript as served (and gzipped, as
  a compressing proxy would send them);
- the time to first render of the conversation list in headless Chromium (Debian's,
  through Playwright): from navigation start to the list on screen, the page's own
  `dashboard:conversations-rendered` mark, in a fresh browser context each run;
- the admin API's listing time alone: the first page, a deep page, searches.

Figures are medians of --runs runs after one warm-up. The machine's other load shows:
compare runs made one after the other.
"""

import argparse
import asyncio
import gzip
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, async_playwright
from procs import child, clean_env, free_port, migrate, postgres_database, wait_http
from servers import UVICORN_FLAGS
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.tables import Conversation, Message

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TOKEN = "bench-dashboard-token"  # noqa: S105 (the throwaway app's ADMIN_TOKEN)
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
FILES = ("/admin", "/admin/admin.css", "/admin/admin.js")
QUESTIONS = [
    "What did she build at Klarna?", "Is she open to relocating to Berlin?",
    "Which languages does she use day to day?", "Has she managed a team?",
    "What is her notice period?", "Does she know Kubernetes?", "Where is she based?",
    "What was her biggest project?", "Is she available for contract work?",
    "Tell me about her payments experience.", "Does she speak German?",
    "What databases has she used?", "Why did she leave her last job?",
]  # fmt: skip
ANSWERS = [
    "She led the payments platform rebuild, moving card authorisation to an event-sourced ledger.",
    "Mostly Kotlin and Go, with Python for data tooling.",
    "She is based in Stockholm and open to hybrid roles in Europe.",
    "Yes: a team of six engineers for two years.",
]
SEARCHES = {"common word": "payments", "rare word": "quokka", "two words": "kotlin python"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default=PG_ADMIN, help="PostgreSQL server (admin URL)")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=3, help="per conversation, on average")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--screenshot", type=Path, help="save the list at 1280x800 here")
    return parser.parse_args()


async def seed(url: str, conversations: int, questions: int) -> None:
    """Conversations spread over 90 days; one in ten answered from resume excerpts."""
    rng = random.Random(15)  # noqa: S311 (sample data, the same each run)
    now = datetime.now(UTC)
    engine = create_async_engine(url)
    try:
        for start in range(0, conversations, 1000):
            talks, messages = [], []
            for _ in range(start, min(start + 1000, conversations)):
                talk = uuid.uuid4()
                begun = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
                excerpts = rng.random() < 0.1
                asked = rng.randint(1, 2 * questions - 1)  # `questions` on average
                for turn in range(asked):
                    at = begun + timedelta(seconds=40 * turn)
                    messages += [
                        _question(talk, rng, at),
                        _answer(talk, rng, at, excerpts=excerpts),
                    ]
                talks.append(
                    {"id": talk, "created_at": begun, "updated_at": at,
                     "question_count": asked, "tokens_used": 1700 * asked}
                )  # fmt: skip
            async with engine.begin() as connection:
                await connection.execute(insert(Conversation), talks)
                await connection.execute(insert(Message), messages)
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))  # as autovacuum soon would
    finally:
        await engine.dispose()


def _question(talk: uuid.UUID, rng: random.Random, at: datetime) -> dict[str, Any]:
    """Every row has the same keys: one INSERT ... VALUES statement serves them all."""
    return {
        "conversation_id": talk, "role": "user", "content": rng.choice(QUESTIONS),
        "created_at": at, "source": None, "model": None, "finish_reason": None,
        "prompt_tokens": None, "completion_tokens": None, "latency_ms": None,
        "first_token_ms": None,
    }  # fmt: skip


def _answer(talk: uuid.UUID, rng: random.Random, at: datetime, *, excerpts: bool) -> dict[str, Any]:
    return {
        "conversation_id": talk, "role": "assistant", "content": rng.choice(ANSWERS),
        "created_at": at + timedelta(seconds=2),
        "source": "resume_excerpt" if excerpts else "model",
        "model": None if excerpts else "openai/gpt-4o-mini", "finish_reason": "stop",
        "prompt_tokens": 0 if excerpts else 1650, "completion_tokens": 0 if excerpts else 40,
        "latency_ms": rng.randint(800, 3000), "first_token_ms": rng.randint(200, 700),
    }  # fmt: skip


async def page_weight(base: str) -> list[str]:
    lines, raw_total, zipped_total = [], 0, 0
    async with httpx.AsyncClient(base_url=base) as http:
        for path in FILES:
            body = (await http.get(path)).content
            zipped = len(gzip.compress(body, 9))
            raw_total, zipped_total = raw_total + len(body), zipped_total + zipped
            lines.append(_weight(path, len(body), zipped))
    return [*lines, _weight("total", raw_total, zipped_total)]


def _weight(name: str, raw: int, zipped: int) -> str:
    return f"  {name:<18} {raw / 1024:6.1f} KB  ({zipped / 1024:5.1f} KB gzipped)"


async def first_render(browser: Browser, base: str, screenshot: Path | None) -> dict[str, float]:
    """Milliseconds from navigation start: the page's files loaded (DOMContentLoaded),
    the listing request sent and answered, the list drawn."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        await context.add_init_script(
            f"sessionStorage.setItem('resume-chat:admin-token', {TOKEN!r})"
        )
        page = await context.new_page()
        await page.goto(f"{base}/admin")
        await page.locator("#conversation-list .card").first.wait_for()  # marked as drawn
        if screenshot:
            await page.screenshot(path=screenshot)
        timings: dict[str, float] = await page.evaluate(
            """() => {
                const listing = performance.getEntriesByType('resource')
                    .find((e) => e.name.includes('/api/admin/conversations'));
                return {
                    loaded: performance.getEntriesByType('navigation')[0]
                        .domContentLoadedEventEnd,
                    sent: listing.startTime,
                    answered: listing.responseEnd,
                    drawn: performance
                        .getEntriesByName('dashboard:conversations-rendered')[0].startTime,
                };
            }"""
        )
        cards = await page.locator("#conversation-list .card").count()
        assert cards == 25, f"expected a full first page, saw {cards} rows"
        return timings
    finally:
        await context.close()


async def api_ms(http: httpx.AsyncClient, runs: int, **params: str) -> float:
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        response = await http.get("/api/admin/conversations", params={"limit": "25", **params})
        response.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


async def deep_cursor(http: httpx.AsyncClient, pages: int) -> str:
    cursor = ""
    for _ in range(pages):
        params = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
        cursor = (await http.get("/api/admin/conversations", params=params)).json()["next_cursor"]
    return cursor


async def measure(args: argparse.Namespace, base: str) -> None:
    print("Page weight (as served):", *await page_weight(base), sep="\n")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            runs = [await first_render(browser, base, None) for _ in range(args.runs + 1)][1:]
            if args.screenshot:
                await first_render(browser, base, args.screenshot)
        finally:
            await browser.close()
    drawn = sorted(run["drawn"] for run in runs)
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(
        f"First render of the conversation list ({args.conversations:,} conversations, "
        f"{args.runs} runs): median {median['drawn']:.0f} ms from navigation start "
        f"(min {drawn[0]:.0f}, max {drawn[-1]:.0f})\n"
        f"  median milestones: page loaded {median['loaded']:.0f} ms, listing sent "
        f"{median['sent']:.0f} ms, answered {median['answered']:.0f} ms, "
        f"list drawn {median['drawn']:.0f} ms"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        print("Admin API, 25 conversations a page (median):")
        print(f"  first page            {await api_ms(http, args.runs):7.1f} ms")
        pages = max(1, min(50, args.conversations // 200))
        cursor = await deep_cursor(http, pages)
        deep = await api_ms(http, args.runs, cursor=cursor)
        print(f"  {pages * 100:,} deep{'':<{15 - len(f'{pages * 100:,}')}} {deep:7.1f} ms")
        for name, words in SEARCHES.items():
            print(f"  search, {name:<13} {await api_ms(http, args.runs, q=words):7.1f} ms")


async def main() -> None:
    args = parse_args()
    one, five, fifteen = os.getloadavg()
    print(f"Load average at the start: {one:.1f} {five:.1f} {fifteen:.1f} ({os.cpu_count()} CPUs)")
    async with postgres_database(args.database) as url:
        with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as work:
            logs = Path(work)
            await migrate(url, logs / "migrate.log")
            started = time.perf_counter()
            await seed(url, args.conversations, args.questions)
            print(
                f"Seeded {args.conversations:,} conversations of 1 to {2 * args.questions - 1}"
                f" questions in {time.perf_counter() - started:.1f} s"
            )
            port = free_port()
            env = clean_env(
                database_url=url, admin_token=TOKEN, migrate_on_startup="false",
                openrouter_api_key="bench-not-a-key", redis_url="", log_level="WARNING",
            )  # fmt: skip
            command = ["-m", "uvicorn", "app.main:app", "--port", str(port), *UVICORN_FLAGS]
            async with child(command, log=logs / "app.log", env=env) as app:
                base = f"http://127.0.0.1:{port}"
                await wait_http(f"{base}/health", app)
                await measure(args, base)


if __name__ == "__main__":
    asyncio.run(main())
