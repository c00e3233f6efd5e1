"""Cold start, from backend/: process start to the first answer, against a bare FastAPI app.

  uv run python ../bench/coldstart.py [--rounds 5] [--before DIR] [--database sqlite|URL]

Each round starts, one after the other, with the same uvicorn flags and the same Python:
  bare   `uvicorn bare_app:app` (bench/bare_app.py: FastAPI and one route), timed from the
         process start to its first `GET /health` answered;
  app    `uvicorn app.main:app` on a database already migrated (a restart: the schema is
         current; MIGRATE_ON_STARTUP as by default), timed to `/health` and to the `done`
         of a first question over /ws, answered by the stand-in provider at once;
  before the same for the backend in DIR (another checkout, e.g. `git archive` of an older
         commit), when given.
Bytecode is compiled first (the environment's packages, each backend's app/ and the bare
app), as the Docker image ships it (UV_COMPILE_BYTECODE and compileall): where
PYTHONDONTWRITEBYTECODE is set, or the code is read-only, every start would otherwise
compile the sources again. `--no-compile` measures without that step.
Each server is stopped after its round. Printed: medians of wall time and of the CPU
seconds the process used up to its answer (user + system, less noisy on a shared
machine), and the ratio app / bare. The target (issue 18): app to first answer at most
2x the bare app to /health.
"""

import argparse
import asyncio
import compileall
import json
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import procstat
from procs import BACKEND, BENCH, child, clean_env, free_port, migrate, wait_http
from servers import UVICORN_FLAGS
from websockets.asyncio.client import connect

QUESTION = json.dumps({"type": "message", "data": "What does she do?"})
POLL_S = 0.005


async def first_health(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(timeout=2.0) as http:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(POLL_S)


async def first_answer(port: int) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=30) as ws:
        json.loads(await ws.recv())  # session
        await ws.send(QUESTION)
        while (frame := json.loads(await ws.recv()))["type"] not in ("done", "error"):
            pass
        if frame["type"] == "error":
            raise RuntimeError(f"the first question failed: {frame['data']}")


@asynccontextmanager
async def server(
    module: str, cwd: Path, env: dict[str, str], log: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, float]]:
    port = free_port()
    args = ["-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port), *UVICORN_FLAGS]
    started = time.perf_counter()
    async with child(args, log=log, env=env, cwd=cwd) as process:
        yield process, port, started


async def time_bare(log: Path) -> dict[str, float]:
    async with server("bare_app:app", BENCH, clean_env(), log) as (process, port, started):
        await first_health(f"http://127.0.0.1:{port}/health", process)
        return {
            "health_s": time.perf_counter() - started,
            "cpu_s": procstat.tree_cpu_s(process.pid),
        }


async def time_app(backend: Path, settings: dict[str, str], log: Path) -> dict[str, float]:
    env = clean_env(**settings)
    async with server("app.main:app", backend, env, log) as (process, port, started):
        await first_health(f"http://127.0.0.1:{port}/health", process)
        health = time.perf_counter() - started
        await first_answer(port)
        answer = time.perf_counter() - started
        return {"health_s": health, "answer_s": answer, "cpu_s": procstat.tree_cpu_s(process.pid)}


def settings_for(database: str, provider: str) -> dict[str, str]:
    return {
        "OPENROUTER_BASE_URL": provider,
        "OPENROUTER_API_KEY": "bench-not-a-key",
        "DATABASE_URL": database,
        "REDIS_URL": "",
        "LOG_LEVEL": "WARNING",
    }


def compile_bytecode(backends: list[Path]) -> None:
    """Write .pyc files for what the servers import, as an installed image has them."""
    for directory in [Path(sysconfig.get_paths()["purelib"]), BENCH]:
        compileall.compile_dir(directory, quiet=1, workers=0)
    for backend in backends:
        compileall.compile_dir(backend / "app", quiet=1, workers=0)


async def run(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    backends = {"app": BACKEND} | ({"before": args.before.resolve()} if args.before else {})
    if args.compile:
        compile_bytecode(list(backends.values()))
    runs: dict[str, list[dict[str, float]]] = {"bare": []} | {name: [] for name in backends}
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    async with restarted(backends, logs) as settings:
        for index in range(args.rounds):
            print(f"round {index + 1}", flush=True)
            runs["bare"].append(await time_bare(logs / "bare.log"))
            for name, backend in backends.items():
                runs[name].append(await time_app(backend, settings[name], logs / f"{name}.log"))
    return runs


@asynccontextmanager
async def restarted(
    backends: dict[str, Path], logs: Path
) -> AsyncIterator[dict[str, dict[str, str]]]:
    """What each backend's start is timed against: the stand-in provider answering at
    once, and a SQLite database of its own, migrated already (a restart). Yields each
    backend's settings."""
    provider_port = free_port()
    provider = f"http://127.0.0.1:{provider_port}/v1"
    fake = ["-m", "devtools.fake_llm", "--port", str(provider_port), "--tokens", "5",
            "--first-token-delay", "0", "--token-delay", "0"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="coldstart-") as work:
        async with child(fake, log=logs / "provider.log") as process:
            await wait_http(f"{provider}/chat/completions", process)
            settings = {}
            for name, backend in backends.items():
                database = f"sqlite+aiosqlite:///{Path(work) / name}.db"
                await migrate(database, logs / "migrate.log", cwd=backend)
                settings[name] = settings_for(database, provider)
            yield settings


def report(runs: dict[str, list[dict[str, float]]]) -> str:
    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    bare_wall, bare_cpu = median("bare", "health_s"), median("bare", "cpu_s")
    lines = [
        "| server | to /health s | to first answer s | CPU s to first answer "
        "| ratio to bare (wall / CPU) |",
        "|---|---:|---:|---:|---:|",
        f"| bare FastAPI | {bare_wall:.2f} | | {bare_cpu:.2f} | 1 |",
    ]
    for name in (name for name in runs if name != "bare"):
        answer, cpu = median(name, "answer_s"), median(name, "cpu_s")
        lines.append(
            f"| {name} | {median(name, 'health_s'):.2f} | {answer:.2f} | {cpu:.2f} | "
            f"{answer / bare_wall:.2f} / {cpu / bare_cpu:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another backend/ to compare")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "coldstart")
    parser.add_argument(
        "--no-compile", dest="compile", action="store_false", help="keep bytecode as it is"
    )
    args = parser.parse_args()
    runs = asyncio.run(run(args))
    (args.out / "latest.json").write_text(json.dumps(runs, indent=2))
    bytecode = "bytecode compiled" if args.compile else "bytecode as found"
    print(f"\nmedians of {args.rounds} rounds ({sys.executable}, {bytecode})\n")
    print(report(runs))


if __name__ == "__main__":
    main()
