"""CPU of one part of the hot path at a time, from backend/, without the rest of the app.

  uv run python ../bench/micro.py llm [--answers 1000] [--concurrency 100] [--transport T]
      LLMClient.stream_chat against `devtools.fake_llm` (60 tokens, no delay to the first,
      1 ms between tokens) in its own process: this process's CPU per streamed answer,
      and the connections left in the pool (reuse). `--transport httpx` uses httpx's own
      transport (httpcore, keep-alive capped at 16 as before issue 18) instead of the
      app's (aiohttp).
  uv run python ../bench/micro.py db [--database URL|sqlite] [--sessions 100] [--questions 5]
      MessageStore.store_question + store_answer (both transactions of a question, with
      the budget checks) on a throwaway database (created on the PostgreSQL server at
      URL and dropped, or a SQLite file): CPU per question.
  uv run python ../bench/micro.py connect [--database URL] [--connections 20] [--rounds 3]
      New PostgreSQL connections through the app's engine, with asyncpg's `ssl=prefer`
      (its default) and `ssl=disable`, alternating: CPU per connection opened.

CPU is this process's user + system time over the measured part only, after a warm-up.
The machine's other load still shows: compare runs made one after the other.
"""

import argparse
import asyncio
import contextlib
import resource
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvloop
from procs import child, clean_env, free_port, postgres_database, wait_http

from app.core.config import Settings
from app.llm.client import (
    Completion,
    LLMClient,
    TokenUsage,
    create_http_client,
)

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SSL = ("prefer", "disable")  # asyncpg's default, and no TLS at all (`micro.py connect`)
ANSWER = ["Alex is a backend engineer "] * 60


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure_llm(args: argparse.Namespace) -> str:
    port = free_port()
    fake = ["-m", "devtools.fake_llm", "--port", str(port), "--tokens", "60",
            "--first-token-delay", "0", "--token-delay", "0.001"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="micro-") as work:
        return await _measure_llm(args, fake, port, Path(work) / "provider.log")


async def _measure_llm(args: argparse.Namespace, fake: list[str], port: int, log: Path) -> str:
    async with child(fake, log=log, env=clean_env()) as provider:
        base = f"http://127.0.0.1:{port}/v1"
        await wait_http(f"{base}/chat/completions", provider)
        settings = Settings(openrouter_api_key="micro", openrouter_base_url=base)
        async with _http_client(settings, args.transport) as http:
            llm = LLMClient(http, settings)
            gate = asyncio.Semaphore(args.concurrency)

            async def answer() -> None:
                async with gate:
                    async for _ in llm.stream_chat([{"role": "user", "content": "Hi"}]):
                        pass

            await asyncio.gather(*(answer() for _ in range(args.concurrency)))
            before, clock = cpu_s(), time.perf_counter()
            await asyncio.gather(*(answer() for _ in range(args.answers)))
            spent, wall = cpu_s() - before, time.perf_counter() - clock
            pooled = _pooled(http)
    return (
        f"llm ({args.transport}): {args.answers} answers, {args.concurrency} at once: "
        f"{1000 * spent / args.answers:.2f} ms CPU per answer, {wall:.1f} s, "
        f"{pooled} pooled connection(s) at the end"
    )


def _http_client(settings: Settings, transport: str) -> httpx.AsyncClient:
    if transport == "aiohttp":
        return create_http_client(settings)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=16)
    return httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=180.0), limits=limits)


def _pooled(http: Any) -> int:
    """Idle connections kept for reuse, whichever transport the client has."""
    transport = http._transport
    if hasattr(transport, "_pool"):  # httpx's own (httpcore)
        return len(transport._pool.connections)
    session = transport._session  # app.llm.transport.AiohttpTransport
    return sum(len(idle) for idle in session.connector._conns.values()) if session else 0


async def measure_db(args: argparse.Namespace) -> str:
    async with throwaway(args.database) as url:
        return await _measure_db(args, url)


@contextlib.asynccontextmanager
async def throwaway(choice: str) -> AsyncIterator[str]:
    """A fresh database: a SQLite file, or one created on the PostgreSQL server and dropped."""
    if choice == "sqlite":
        with tempfile.TemporaryDirectory(prefix="micro-") as work:
            yield f"sqlite+aiosqlite:///{Path(work) / 'micro.db'}"
        return
    async with postgres_database(choice.replace("+asyncpg", "", 1)) as url:
        yield url


async def _measure_db(args: argparse.Namespace, url: str) -> str:
    from app.chat.budgets import Budgets
    from app.chat.spool import AnswerSpool
    from app.chat.store import MessageStore
    from app.chat.turns import Answer, ChatSession, Client
    from app.core.metrics import Metrics
    from app.db.engine import create_engine, make_database
    from app.db.migrate import upgrade_database
    from app.llm.tokens import TokenCounter

    settings = Settings(database_url=url, database_pool_size=20)
    engine = create_engine(settings)
    await upgrade_database(engine)
    counter = TokenCounter(settings.token_encoding)
    budgets = Budgets(10**12, 10**12, 10**12, 1000)  # checked, never reached
    store = MessageStore(
        make_database(engine), counter, budgets=budgets, metrics=Metrics(),
        history_messages=settings.history_messages, model="micro/model",
        spool=AnswerSpool(Path(tempfile.gettempdir()) / "micro-spool.jsonl"),
        store_retry_seconds=0,
    )  # fmt: skip

    async def session(index: int) -> None:
        ip = f"10.1.0.{index % 250}"
        chat, client = ChatSession(uuid.uuid4(), stored=False), Client(ip, network=ip)
        for _ in range(args.questions):
            stored = await store.store_question(
                chat, "What does she do now?", 7, client, lambda _history: 1700
            )
            answer = Answer(started=asyncio.get_running_loop().time())
            answer.question_id, answer.asked_on = stored.id, stored.asked_on
            answer.reserved = stored.reserved
            answer.parts.extend(ANSWER)
            answer.first_token_at = answer.started
            answer.completion = Completion("stop", TokenUsage(1000, 60), "micro/model")
            await store.store_answer(chat, client, answer)

    try:
        await asyncio.gather(*(session(index) for index in range(10)))
        before, clock = cpu_s(), time.perf_counter()
        await asyncio.gather(*(session(index) for index in range(args.sessions)))
        spent, wall = cpu_s() - before, time.perf_counter() - clock
    finally:
        await engine.dispose()
    questions = args.sessions * args.questions
    return (
        f"db: {questions} questions, {args.sessions} sessions at once: "
        f"{1000 * spent / questions:.2f} ms CPU per question, {wall:.1f} s"
    )


async def measure_connect(args: argparse.Namespace) -> str:
    """New connections through the app's engine (`driver_connection`), each `ssl` mode
    in turn, `--rounds` times: CPU per connection opened (and its first query)."""
    from app.db.engine import create_engine, driver_connection, make_database

    async def open_all(url: str) -> float:
        engine = create_engine(Settings(database_url=url, database_pool_size=args.connections))
        database = make_database(engine)
        opened = asyncio.Barrier(args.connections + 1)
        held = asyncio.Event()

        async def hold() -> None:  # each on its own new connection: all held at once
            async with driver_connection(database) as connection:
                await connection.fetchval("SELECT 1")
                await opened.wait()
                await held.wait()

        try:
            before = cpu_s()
            holders = [asyncio.create_task(hold()) for _ in range(args.connections)]
            await opened.wait()
            spent = cpu_s() - before
            held.set()
            await asyncio.gather(*holders)
        finally:
            await engine.dispose()
        return 1000 * spent / int(args.connections)

    lines = [f"connect: {args.connections} new connections at once, ms CPU per connection"]
    async with throwaway(args.database) as url:
        for round_ in range(args.rounds):
            figures = [f"ssl={mode} {await open_all(f'{url}?ssl={mode}'):.2f}" for mode in SSL]
            lines.append(f"round {round_ + 1}: " + ", ".join(figures))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parts = parser.add_subparsers(dest="part", required=True)
    llm = parts.add_parser("llm")
    llm.add_argument("--answers", type=int, default=1000)
    llm.add_argument("--concurrency", type=int, default=100)
    llm.add_argument("--transport", choices=["aiohttp", "httpx"], default="aiohttp")
    db = parts.add_parser("db")
    db.add_argument("--database", default=PG, help="PostgreSQL server URL, or sqlite")
    db.add_argument("--sessions", type=int, default=100)
    db.add_argument("--questions", type=int, default=5)
    connect = parts.add_parser("connect")
    connect.add_argument("--database", default=PG, help="PostgreSQL server URL")
    connect.add_argument("--connections", type=int, default=20)
    connect.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    measure = {"llm": measure_llm, "db": measure_db, "connect": measure_connect}[args.part]
    print(asyncio.run(measure(args), loop_factory=uvloop.new_event_loop))


if __name__ == "__main__":
    main()
