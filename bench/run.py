"""The benchmark in one command, from backend/: `uv run python ../bench/run.py [--quick]`.

For each level of concurrent sessions it starts a fresh stand-in provider
(`python -m devtools.fake_llm`) and a fresh app (`resume-chat serve`) on 127.0.0.1,
measures the floor (the load straight to the provider), an idle phase (N open sockets)
and the chat load, then stops both. Everything it starts is stopped on exit, error,
Ctrl+C or SIGTERM. Results go to `--out` as latest.json, latest.md and latest.png.
"""

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import procstat
import profiling
from machine import describe_machine
from procs import BENCH, child, clean_env, free_port, migrate, postgres_database, wait_http
from report import compare_workers, markdown, write_outputs
from servers import ORIGIN, app_args, app_settings, provider_args, shown
from stats import difference

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
QUICK = {
    "levels": [1, 5],
    "questions": 1,
    "first_token_ms": 20.0,
    "tokens": 10,
    "tokens_per_second": 200.0,
    "database": "sqlite",
    "phase_timeout": 30.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="levels 1,5; 1 question; tiny profile; SQLite")
    add("--levels", type=_ints, default=[1, 10, 100, 500, 1000], help="e.g. 1,10,100")
    add("--questions", type=int, default=3, help="questions per session, back to back")
    add("--workers", type=int, default=1, help="uvicorn workers")
    add("--first-token-ms", type=float, default=300.0)
    add("--tokens", type=int, default=60, help="tokens per answer")
    add("--tokens-per-second", type=float, default=50.0)
    add("--database", default=PG_ADMIN, help="PostgreSQL server URL, or sqlite")
    add("--db-pool-size", type=int, default=None, help="DATABASE_POOL_SIZE (app default)")
    add("--redis", default=None, help="REDIS_URL: state shared through Redis, as instances do")
    add("--out", type=Path, default=BENCH / "results", help="results folder")
    add("--phase-timeout", type=float, default=240.0, help="seconds for one load phase")
    add("--max-minutes", type=float, default=30.0, help="the whole run's limit")
    add("--profile", action="store_true", help="py-spy the app during each chat load")
    add("--uvicorn-arg", action="append", default=[], help="extra uvicorn flag (repeatable)")
    add("--compare-workers", type=int, default=None, help="run again with N workers; ratio")
    args = parser.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    return args


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


@contextlib.asynccontextmanager
async def database(choice: str) -> AsyncIterator[str]:
    """A fresh database for the run: a SQLite file, or a throwaway PostgreSQL database."""
    if choice == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-") as work:
            yield f"sqlite+aiosqlite:///{Path(work) / 'bench.db'}"
        return
    admin = choice.replace("postgresql+asyncpg://", "postgresql://", 1)
    async with postgres_database(admin) as url:
        yield url


class Load:
    """A running `load.py`: it warms up, then waits for the go; each step prints one line."""

    def __init__(self, process: asyncio.subprocess.Process, limit_s: float) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self._stdin, self._stdout = process.stdin, process.stdout
        self._limit_s = limit_s

    async def expect(self, key: str) -> Any:
        async with asyncio.timeout(self._limit_s):
            line = await self._stdout.readline()
        if not line:
            raise RuntimeError(f"load.py stopped before '{key}'; see logs/load.log")
        return json.loads(line)[key]

    async def go(self) -> None:
        self._stdin.write(b"\n")
        await self._stdin.drain()


@contextlib.asynccontextmanager
async def load_process(
    args: argparse.Namespace, mode: str, url: str, sessions: int, questions: int = 1
) -> AsyncIterator[Load]:
    warmup = 2 if mode == "floor" else 2 * args.workers
    command = [
        str(BENCH / "load.py"), mode, "--url", url, "--sessions", str(sessions),
        "--questions", str(questions), "--warmup", str(warmup),
        "--timeout", str(args.phase_timeout), "--origin", ORIGIN,
    ]  # fmt: skip
    async with child(command, log=args.logs / "load.log", talk=True) as process:
        yield Load(process, args.phase_timeout + 60)


async def steady_rss(pid: int, samples: int = 5) -> int:
    """The median of a few RSS readings 100 ms apart."""
    readings = []
    for _ in range(samples):
        readings.append(procstat.tree_rss(pid))
        await asyncio.sleep(0.1)
    return sorted(readings)[samples // 2]


async def floor_phase(args: argparse.Namespace, url: str, n: int) -> dict[str, Any]:
    async with load_process(args, "floor", url, n, args.questions) as load:
        await load.expect("warm")
        await load.go()
        result: dict[str, Any] = await load.expect("result")
    return result


async def idle_phase(args: argparse.Namespace, app_pid: int, url: str, n: int) -> dict[str, Any]:
    """RSS of N sockets that wait after `session`, above the baseline before they opened."""
    async with load_process(args, "idle", url, n) as load:
        await load.expect("warm")
        baseline = await steady_rss(app_pid)
        await load.go()
        ready = await load.expect("ready")
        await asyncio.sleep(0.5)
        held = await steady_rss(app_pid)
        await load.go()
        await load.expect("result")
    opened = max(ready["open"], 1)
    return {
        "open": ready["open"],
        "connect_ms": ready["connect_ms"],
        "errors": ready["errors"],
        "rss_baseline_mb": round(baseline / 2**20, 1),
        "rss_held_mb": round(held / 2**20, 1),
        "rss_per_session_kb": round((held - baseline) / opened / 1024, 1),
    }


async def load_phase(
    args: argparse.Namespace, pids: dict[str, int], url: str, n: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chat load; also the CPU each side spent and the app's RSS at its peak."""
    async with load_process(args, "app", url, n, args.questions) as load:
        await load.expect("warm")
        before = {name: procstat.tree_cpu_s(pid) for name, pid in pids.items()}
        db_before = procstat.named_cpu_s("postgres")
        sampler = procstat.RssSampler(pids["app"])
        sampling = asyncio.create_task(sampler.run())
        try:
            async with profiling.profiled(args.out if args.profile else None, pids["app"], n):
                await load.go()
                result: dict[str, Any] = await load.expect("result")
        finally:
            sampling.cancel()
        spent = {name: procstat.tree_cpu_s(pid) - before[name] for name, pid in pids.items()}
        db_spent = procstat.named_cpu_s("postgres") - db_before
    answered = max(result["answered"], 1)
    server = {
        "cpu_s": round(spent["app"], 3),
        "cpu_ms_per_answer": round(spent["app"] * 1000 / answered, 2),
        "db_cpu_ms_per_answer": None if args.sqlite else round(db_spent * 1000 / answered, 2),
        "provider_cpu_s": round(spent["provider"], 3),
        "loadgen_cpu_s": result["loadgen_cpu_s"],
        "rss_peak_mb": round(sampler.peak / 2**20, 1),
    }
    return result, server


async def measure_level(args: argparse.Namespace, db: str, n: int) -> dict[str, Any]:
    provider_port, app_port = free_port(), free_port()
    provider_url = f"http://127.0.0.1:{provider_port}/v1"
    logs = args.logs
    async with child(provider_args(args, provider_port), log=logs / "provider.log") as provider:
        await wait_http(f"{provider_url}/chat/completions", provider)
        floor = await floor_phase(args, f"{provider_url}/chat/completions", n)
        env = clean_env(**app_settings(args, n, db, provider_url))
        async with child(app_args(args, app_port), log=logs / "app.log", env=env) as app:
            await wait_http(f"http://127.0.0.1:{app_port}/health", app)
            ws_url = f"ws://127.0.0.1:{app_port}/ws"
            idle = await idle_phase(args, app.pid, ws_url, n)
            pids = {"app": app.pid, "provider": provider.pid}
            result, server = await load_phase(args, pids, ws_url, n)
    return combine(n, result, floor, server, idle)


def combine(
    n: int, app: dict[str, Any], floor: dict[str, Any], server: dict[str, Any], idle: dict[str, Any]
) -> dict[str, Any]:
    ratio = app["answers_per_s"] / floor["answers_per_s"] if floor["answers_per_s"] else None
    return {
        "sessions": n,
        "app": app,
        "floor": floor,
        "overhead_ms": {
            "first": difference(app["first_ms"], floor["first_ms"]),
            "done": difference(app["done_ms"], floor["done_ms"]),
        },
        "throughput_ratio": None if ratio is None else round(ratio, 3),
        "server": server,
        "idle": idle,
    }


def configuration(args: argparse.Namespace) -> dict[str, Any]:
    top = max(args.levels)
    return {
        "quick": args.quick,
        "levels": args.levels,
        "questions": args.questions,
        "workers": args.workers,
        "provider": {
            "command": "python -m devtools.fake_llm",
            "first_token_ms": args.first_token_ms,
            "tokens": args.tokens,
            "tokens_per_second": args.tokens_per_second,
        },
        "database": "sqlite" if args.sqlite else "postgresql",
        "redis": bool(args.redis),
        "app_command": shown(app_args(args, 0)).replace("--port 0", "--port <free>"),
        "app_settings_at_top_level": app_settings(args, top, "<throwaway>", "<provider>"),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    levels = []
    async with database(args.database) as db:
        await migrate(db, args.logs / "migrate.log")
        for n in args.levels:
            print(f"level {n}: running", flush=True)
            levels.append(await measure_level(args, db, n))
            print(f"level {n}: {summary_line(levels[-1])}", flush=True)
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - clock, 1),
        "machine": describe_machine(),
        "config": configuration(args),
        "levels": levels,
    }


def summary_line(level: dict[str, Any]) -> str:
    app, floor = level["app"], level["floor"]
    return (
        f"{app['answered']}/{app['asked']} answered, {app['answers_per_s']}/s "
        f"(floor {floor['answers_per_s']}/s), first chunk p50 {app['first_ms']['p50']} ms "
        f"(floor {floor['first_ms']['p50']}), errors {app['errors'] or 'none'}"
    )


async def bounded(args: argparse.Namespace) -> dict[str, Any]:
    """`run` within --max-minutes; SIGTERM cancels it like Ctrl+C, so cleanup still runs."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with asyncio.timeout(args.max_minutes * 60):
        return await run(args)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.sqlite = args.database == "sqlite"
    args.out.mkdir(parents=True, exist_ok=True)
    args.logs = args.out / "logs"
    args.logs.mkdir(exist_ok=True)
    for old in args.logs.glob("*.log"):
        old.unlink()
    results = asyncio.run(bounded(args))
    if args.compare_workers:
        again = argparse.Namespace(**vars(args) | {"workers": args.compare_workers})
        results = compare_workers(results, asyncio.run(bounded(again)))
    written = write_outputs(results, args.out)
    print()
    print(markdown(results))
    print("\nwrote " + ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
