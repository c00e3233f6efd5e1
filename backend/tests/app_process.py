"""The app as users run it, `uvicorn app.main:app` in its own process, with uvicorn's flags."""

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

BACKEND = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without any of the app's settings, plus `settings`."""
    ours = (
        "OPENROUTER_", "LLM_", "DATABASE_", "RESUME_", "LOG_", "DEBUG", "APP_", "REDIS_",
        "RATE_", "WS_",
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ours)}
    return env | {k.upper(): v for k, v in settings.items()}


async def start_process(port: int, *args: str, **settings: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), *args,
        cwd=BACKEND, env=clean_env(**settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _wait_until_up(port: int, process: asyncio.subprocess.Process) -> None:
    """Until /health answers (start-up takes seconds, more on a busy machine)."""
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while process.returncode is None:
            try:
                await http.get(f"http://127.0.0.1:{port}/health")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)


@asynccontextmanager
async def uvicorn_process(
    *args: str, **settings: str
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """Serve the app from `uvicorn app.main:app ARGS` until the block ends (then killed)."""
    port = free_port()
    process = await start_process(port, *args, **settings)
    try:
        await _wait_until_up(port, process)
        yield port, process
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()


@asynccontextmanager
async def app_process(*args: str, **settings: str) -> AsyncIterator[int]:
    """`uvicorn_process`, yielding only the port."""
    async with uvicorn_process(*args, **settings) as (port, _):
        yield port
