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


async def start_process(port: int, *args: str, **settings: str) -> asyncio.subprocess.Process:
    ours = ("OPENROUTER_", "LLM_", "DATABASE_", "RESUME_", "LOG_", "REDIS_", "RATE_", "WS_")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ours)}
    env |= {k.upper(): v for k, v in settings.items()}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), *args,
        cwd=BACKEND, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@asynccontextmanager
async def app_process(*args: str, **settings: str) -> AsyncIterator[int]:
    """Serve the app from `uvicorn app.main:app ARGS` until the block ends; yields the port."""
    port = free_port()
    process = await start_process(port, *args, **settings)
    try:
        async with httpx.AsyncClient() as http, asyncio.timeout(30):
            while process.returncode is None:
                try:
                    await http.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield port
    finally:
        if process.returncode is None:
            process.kill()
        await process.communicate()
