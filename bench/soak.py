"""The soak run, from backend/: `uv run python ../bench/soak.py --minutes 10` (or `--quick`).

Starts the stand-in provider (`python -m devtools.fake_llm --fault-rate ...`) and the app
(`resume-chat serve`) on 127.0.0.1 against a throwaway PostgreSQL database (or SQLite),
runs mixed load for the given time (see soak_visitors.py), then checks the database for
lost turns, the app's memory trend and its database connections, and writes
soak-latest.json and soak-latest.md. Exits 1 when a turn was lost. Everything it starts
is stopped on exit, error, Ctrl+C or SIGTERM. bench/SOAK.md describes the report.
"""

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from procs import BENCH, child, clean_env, free_port, migrate, postgres_database, wait_http
from soak_checks import RssTrend, audit, markdown, pg_connections, stored_messages
from soak_visitors import Tally, Visitor

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
UNLIMITED = "1000000/minute"
QUICK = {"minutes": 0.4, "visitors": 6, "rss_interval": 0.5, "database": "sqlite"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--minutes", type=float, default=10.0, help="how long the load runs")
    add("--quick", action="store_true", help="24 s, 6 visitors, SQLite (the test suite's run)")
    add("--visitors", type=int, default=20, help="visitors at once")
    add("--think-s", type=float, default=0.5, help="mean pause between a visitor's visits")
    add("--fault-rate", type=float, default=0.1, help="share of provider requests that fail")
    add("--database", default=PG_ADMIN, help="PostgreSQL server (admin) URL, or sqlite")
    add("--pool-size", type=int, default=10, help="DATABASE_POOL_SIZE")
    add("--workers", type=int, default=1, help="uvicorn workers")
    add("--rss-interval", type=float, default=2.0, help="seconds between RSS samples")
    add("--out", type=Path, default=BENCH / "results", help="folder for soak-latest.*")
    if parser.parse_args(argv).quick:
        parser.set_defaults(**QUICK)  # flags given still win
    args = parser.parse_args(argv)
    args.logs = args.out / "logs" / "soak"
    return args


@contextlib.asynccontextmanager
async def database(choice: str) -> AsyncIterator[str]:
    if choice == "sqlite":
        with tempfile.TemporaryDirectory(prefix="soak-") as work:
            yield f"sqlite+aiosqlite:///{Path(work) / 'soak.db'}"
        return
    async with postgres_database(choice.replace("+asyncpg", "")) as url:
        yield url


def app_settings(args: argparse.Namespace, db: str, provider: str) -> dict[str, str]:
    """Production settings with short provider timeouts (hangs are injected) and no budgets."""
    return {
        "OPENROUTER_BASE_URL": provider,
        "OPENROUTER_API_KEY": "soak-not-a-key",
        "DATABASE_URL": db,
        "DATABASE_POOL_SIZE": str(args.pool_size),
        "MIGRATE_ON_STARTUP": "false",
        "LLM_FIRST_TOKEN_TIMEOUT": "3",
        "LLM_CHUNK_TIMEOUT": "3",
        "LLM_MAX_RETRIES": "1",
        "LLM_RETRY_MAX_WAIT": "0.5",
        "RATE_LIMIT_QUESTIONS_PER_IP": UNLIMITED,
        "RATE_LIMIT_QUESTIONS_PER_SESSION": UNLIMITED,
        "RATE_LIMIT_NEW_SESSIONS_PER_IP": UNLIMITED,
        "MAX_CONNECTIONS_PER_IP": str(4 * args.visitors + 10),
        "MAX_CONCURRENT_STREAMS": str(max(2, args.visitors * 9 // 10)),  # a few rate_limited
        "MAX_TURNS_PER_SESSION": "100000",
        "BUDGET_TOKENS_PER_SESSION": "0",
        "BUDGET_TOKENS_PER_IP_PER_DAY": "0",
        "BUDGET_TOKENS_PER_DAY": "0",
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }


def provider_args(args: argparse.Namespace, port: int) -> list[str]:
    return [
        "-m", "devtools.fake_llm", "--port", str(port), "--tokens", "20",
        "--first-token-delay", "0.1", "--token-delay", "0.02",
        "--fault-rate", str(args.fault_rate),
    ]  # fmt: skip


def app_args(args: argparse.Namespace, port: int) -> list[str]:
    """`resume-chat serve` (`python -m app.cli serve`, the same code)."""
    return [
        "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(args.workers),
    ]  # fmt: skip


async def load(args: argparse.Namespace, base: str) -> Tally:
    """Visitors until the time is up; each then finishes what it has in flight."""
    stop = asyncio.Event()
    visitors = [Visitor(number, base, stop) for number in range(args.visitors)]
    tasks = [asyncio.create_task(visitor.run(args.think_s)) for visitor in visitors]
    await asyncio.sleep(args.minutes * 60)
    stop.set()
    _, late = await asyncio.wait(tasks, timeout=90)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tally = Tally()
    for visitor in visitors:
        tally.add(visitor.tally)
    return tally


async def soak(args: argparse.Namespace, db: str) -> dict[str, Any]:
    provider_port, app_port = free_port(), free_port()
    provider_url = f"http://127.0.0.1:{provider_port}/v1"
    await migrate(db, args.logs / "migrate.log")
    async with child(provider_args(args, provider_port), log=args.logs / "provider.log") as fake:
        await wait_http(f"{provider_url}/chat/completions", fake)
        env = clean_env(**app_settings(args, db, provider_url))
        async with child(app_args(args, app_port), log=args.logs / "app.log", env=env) as app:
            await wait_http(f"http://127.0.0.1:{app_port}/health", app)
            trend = RssTrend(app.pid, args.rss_interval)
            sampling = asyncio.create_task(trend.run())
            try:
                tally = await load(args, f"127.0.0.1:{app_port}")
            finally:
                sampling.cancel()
            await asyncio.sleep(2)  # answers the visitors gave up on are still being stored
            check = audit(await stored_messages(db), tally)
            connections = None
            if not db.startswith("sqlite"):
                connections = await pg_connections(args.database, db.rsplit("/", 1)[1])
    return {
        "load": {
            "asked": tally.asked,
            "outcomes": dict(tally.outcomes.most_common()),
            "client_failures": dict(tally.client_failures),
            "unknown_endings": sum(tally.unknown.values()),
        },
        "database_check": check,
        "rss": trend.summary(),
        "db_connections": connections,
        "pool_idle_size": args.pool_size * args.workers,
    }


def verdict(report: dict[str, Any]) -> str:
    problems = []
    if report["database_check"]["lost_turns"]:
        problems.append(f"{report['database_check']['lost_turns']} lost turns")
    if report["database_check"]["stored_more_than_accepted"]:
        problems.append("questions stored that were refused or stored twice")
    connections = report["db_connections"] or {}
    if set(connections) - {"idle"} or sum(connections.values()) > report["pool_idle_size"]:
        problems.append(f"database connections beyond the idle pool: {connections}")
    return "; ".join(problems) or "pass"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    async with asyncio.timeout(args.minutes * 60 + 300), database(args.database) as db:
        report = await soak(args, db)
    report |= {
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - clock, 1),
        "config": {
            "minutes": args.minutes,
            "visitors": args.visitors,
            "think_s": args.think_s,
            "fault_rate": args.fault_rate,
            "database": "sqlite" if args.database == "sqlite" else "postgresql",
            "pool_size": args.pool_size,
            "workers": args.workers,
        },
    }
    report["verdict"] = verdict(report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    for old in args.logs.glob("*.log"):
        old.unlink()
    report = asyncio.run(run(args))
    (args.out / "soak-latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "soak-latest.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {args.out / 'soak-latest.json'} and soak-latest.md; logs in {args.logs}")
    return 1 if report["database_check"]["lost_turns"] else 0


if __name__ == "__main__":
    sys.exit(main())
