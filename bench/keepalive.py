"""Provider connections kept between questions, from backend/: what a new TLS connection
per question costs the app.

  uv run python ../bench/keepalive.py [--keepalive 5,120] [--rounds 2] [--sessions 10]
                                      [--questions 4] [--pause 8]

The stand-in provider serves https with a self-signed certificate (the tests' own: EC
P-256, as Cloudflare, in front of OpenRouter, serves), which the app trusts through
SSL_CERT_FILE, and keeps idle connections 400 s, as Cloudflare does. For each
LLM_KEEPALIVE_SECONDS in turn (`--rounds` times, alternating), a fresh app on a migrated
SQLite file: `--sessions` visitors each ask `--questions` questions and pause `--pause`
seconds after each answer, as a visitor reading it. The first answers open the
connections; what is measured starts once all of them are done: the app's CPU per
answer, the first chunk's p50 (from sending the question), and the new connections the
app opened to the provider (its established ones, read from /proc/net/tcp every 0.2 s).
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import procstat
from load import Tally, ask, open_session, question_for
from procs import child, clean_env, free_port, migrate, wait_http
from servers import ORIGIN, app_args, app_settings, provider_args

from tests.support.app import wait_for_port
from tests.support.tls import self_signed

PROVIDER_KEEPALIVE_S = 400  # Cloudflare's idle limit for HTTP/1.1 client connections


def connections_to(port: int) -> set[int]:
    """Local ports of the established TCP connections to 127.0.0.1:`port` (the app's)."""
    peers: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and remote == f"0100007F:{port:04X}":
            peers.add(int(local.split(":")[1], 16))
    return peers


async def visitor(
    args: argparse.Namespace, url: str, tally: Tally, first_done: asyncio.Barrier
) -> None:
    """One session: a first question (not measured), then the rest, each after a pause."""
    ws = await open_session(url, ORIGIN, Tally())
    async with ws:
        await ask(ws, question_for(0), Tally())
        await first_done.wait()
        for index in range(1, args.questions):
            await asyncio.sleep(args.pause)
            await ask(ws, question_for(index), tally)


async def one_run(
    args: argparse.Namespace,
    keepalive: float,
    provider: str,
    provider_port: int,
    cert: Path,
    work: Path,
) -> dict[str, Any]:
    database = f"sqlite+aiosqlite:///{work / f'keepalive-{keepalive}-{time.monotonic_ns()}.db'}"
    await migrate(database, work / "migrate.log")
    settings = app_settings(args, args.sessions, database, provider)
    # The app trusts the stand-in's self-signed certificate as its only CA.
    env = clean_env(**settings, LLM_KEEPALIVE_SECONDS=str(keepalive), SSL_CERT_FILE=str(cert))
    port = free_port()
    command = app_args(argparse.Namespace(workers=1, uvicorn_arg=[]), port)
    async with child(command, log=work / "app.log", env=env) as app:
        await wait_http(f"http://127.0.0.1:{port}/health", app)
        tally = Tally()
        seen: set[int] = set()
        cpu: list[float] = []

        async def measure_from_here() -> None:
            seen.update(connections_to(provider_port))
            cpu.append(procstat.tree_cpu_s(app.pid))

        first_done = asyncio.Barrier(args.sessions + 1)
        url = f"ws://127.0.0.1:{port}/ws"
        visitors = [visitor(args, url, tally, first_done) for _ in range(args.sessions)]
        running = asyncio.gather(*visitors)
        await first_done.wait()
        await measure_from_here()
        opened_after = 0
        while not running.done():  # sample the app's connections as they come and go
            await asyncio.wait([running], timeout=0.2)
            now = connections_to(provider_port)
            opened_after += len(now - seen)
            seen |= now
        await running
        cpu.append(procstat.tree_cpu_s(app.pid))
    answers = len(tally.done)
    return {
        "keepalive_s": keepalive,
        "answers": answers,
        "errors": dict(tally.errors),
        "cpu_ms_per_answer": round(1000 * (cpu[1] - cpu[0]) / max(answers, 1), 2),
        "first_chunk_p50_ms": round(1000 * statistics.median(tally.first), 1),
        "new_connections": opened_after,
    }


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="keepalive-") as folder:
        work = Path(folder)
        cert, key = self_signed(work)
        port = free_port()
        stand_in = argparse.Namespace(tokens=60, first_token_ms=300.0, tokens_per_second=50.0)
        fake = [
            *provider_args(stand_in, port),
            "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
            "--keep-alive", str(PROVIDER_KEEPALIVE_S),
        ]  # fmt: skip
        async with child(fake, log=work / "provider.log") as provider:
            base = f"https://127.0.0.1:{port}/v1"
            await wait_for_port(port, provider, "the stand-in provider")
            runs = []
            for round_ in range(args.rounds):
                for keepalive in args.keepalive:
                    print(f"round {round_ + 1}: LLM_KEEPALIVE_SECONDS={keepalive:g}", flush=True)
                    runs.append(await one_run(args, keepalive, base, port, cert, work))
    print(report(args, runs))


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> str:
    lines = [
        f"\n{args.sessions} sessions x {args.questions} questions, {args.pause:g} s pause after"
        " each answer; measured: the questions after the first\n",
        "| LLM_KEEPALIVE_SECONDS | answers | new provider connections | CPU ms/answer |"
        " first chunk p50 ms | errors |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['keepalive_s']:g} | {run['answers']} | {run['new_connections']} |"
            f" {run['cpu_ms_per_answer']} | {run['first_chunk_p50_ms']} | {run['errors'] or 0} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--keepalive", default="5,120", help="LLM_KEEPALIVE_SECONDS values, e.g. 5,120")
    add("--rounds", type=int, default=2)
    add("--sessions", type=int, default=10)
    add("--questions", type=int, default=4, help="per session; the first is not measured")
    add("--pause", type=float, default=8.0, help="seconds after each answer")
    args = parser.parse_args()
    args.keepalive = [float(value) for value in args.keepalive.split(",")]
    args.db_pool_size = args.redis = None
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
