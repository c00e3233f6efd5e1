"""Child processes of a benchmark run: started in their own process groups, always ended."""

import asyncio
import atexit
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import asyncpg
import httpx

BACKEND = Path(__file__).resolve().parents[1] / "backend"
BENCH = Path(__file__).resolve().parent
STOP_GRACE_S = 10.0
# Settings of the app that the caller's environment must not leak into a run.
OUR_PREFIXES = (
    "ADMIN_", "ALLOWED_", "APP_", "BUDGET_", "DATABASE_", "DEBUG", "EXCERPT_", "FALLBACK_",
    "GREETING", "HISTORY_", "LLM_", "LOG_", "MAX_", "METRICS_", "MIGRATE_", "OPENROUTER_",
    "PROMETHEUS_", "RATE_LIMIT_", "REDIS_", "RESUME_", "RETENTION_", "SHUTDOWN_", "STARTER_",
    "TOKEN_", "TRUSTED_", "WS_", "HOST", "PORT", "HTTP_", "SLOT_", "IPV6_", "ANSWER_",
)  # fmt: skip

_running: set[int] = set()


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@atexit.register
def _kill_leftovers() -> None:
    """Last resort (an unexpected exit): nothing we started outlives the run."""
    for pid in list(_running):
        _kill_group(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without any app setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(OUR_PREFIXES)}
    return env | {k.upper(): v for k, v in settings.items()}


@asynccontextmanager
async def child(
    args: list[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    talk: bool = False,
    cwd: Path = BACKEND,
    wrapper: Sequence[str] = (),
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `python args...` from `cwd` (backend/) in its own process group; end the group
    on exit. `wrapper` goes before `python` (e.g. valgrind and its options).

    With `talk`, its stdin and stdout are pipes; otherwise stdout goes to `log` with stderr.
    """
    pipe = asyncio.subprocess.PIPE
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *wrapper, sys.executable, *args, cwd=cwd, env=dict(env or clean_env()),
            stdin=pipe if talk else asyncio.subprocess.DEVNULL, stdout=pipe if talk else out,
            stderr=out, start_new_session=True,
        )  # fmt: skip
    _running.add(process.pid)
    try:
        yield process
    finally:
        await stop(process)


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a grace period."""
    if process.returncode is None:
        _kill_group(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await process.wait()
        except TimeoutError:
            pass
    _kill_group(process.pid, signal.SIGKILL)  # workers or anything else left in the group
    with suppress(ProcessLookupError):
        await process.wait()
    _running.discard(process.pid)


async def wait_http(url: str, process: asyncio.subprocess.Process, limit_s: float = 60) -> None:
    """Until `url` answers at all (any status); raises if the process dies first."""
    async with httpx.AsyncClient(timeout=2.0) as http:
        async with asyncio.timeout(limit_s):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"{url}: the server exited with {process.returncode}")
                try:
                    await http.get(url)
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
                else:
                    return


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A throwaway database for the run, dropped at the end; yields its SQLAlchemy URL."""
    name = f"bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def migrate(database_url: str, log: Path, cwd: Path = BACKEND) -> None:
    """Migrate once before the workers start, as a deployment would."""
    env = clean_env(database_url=database_url, log_level="WARNING")
    command = ["-m", "alembic", "upgrade", "head"]
    async with child(command, log=log, env=env, cwd=cwd) as process:
        await process.wait()
        if process.returncode:
            raise RuntimeError(f"migrations failed ({process.returncode}); see {log}")
