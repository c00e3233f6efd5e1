"""The one way tests start the app: in the test's loop, in a thread, or as a process.

- `running_app(settings)` / `serve(asgi_app)`: a real uvicorn server on a loopback port,
  in the test's own event loop.
- `threaded_app(**settings)`: the same from a background thread, for synchronous tests.
- `app_process(*args, **settings)`: the app as users run it (`resume-chat serve`), in its
  own process.
"""

import asyncio
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import httpx

from app.core.config import Settings
from app.core.serving import serve
from app.main import create_app
from devtools.fake_llm import start_fake_llm

__all__ = ["app_process", "running_app", "serve", "threaded_app", "uvicorn_process"]


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[int]:
    async with serve(create_app(settings)) as port:
        yield port


BACKEND = Path(__file__).resolve().parents[2]
# The console script `uv sync` installs beside the interpreter: the user's run command.
RESUME_CHAT = str(Path(sys.executable).with_name("resume-chat"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without any of the app's settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    return env | {k.upper(): v for k, v in settings.items()}


# Every variable the app reads: its settings' names and their aliases.
SETTING_NAMES = frozenset(
    name.upper()
    for field, info in Settings.model_fields.items()
    for name in [field, *getattr(info.validation_alias, "choices", [])]
    if isinstance(name, str)
)


async def start_process(port: int, *args: str, **settings: str) -> asyncio.subprocess.Process:
    """`resume-chat serve --port PORT ARGS` with `settings` as its environment."""
    return await asyncio.create_subprocess_exec(
        RESUME_CHAT, "serve", "--port", str(port), *args,
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
    """Serve the app from `resume-chat serve ARGS` until the block ends (then killed)."""
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


@contextmanager
def threaded_app(**settings: object) -> Iterator[int]:
    """Serve the app (with a fake provider) on loopback until the block ends; yields the port."""
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()

    async def start() -> int:
        fake = await stack.enter_async_context(start_fake_llm())
        values: dict[str, object] = {
            "openrouter_api_key": "sk-test",
            "openrouter_base_url": fake.base_url,
        }
        app = create_app(Settings(_env_file=None, **(values | settings)))  # type: ignore[arg-type]
        return await stack.enter_async_context(serve(app))

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def wait_for_port(port: int, process: asyncio.subprocess.Process, name: str) -> None:
    """Until `process` accepts TCP connections on loopback `port` (30 s at most)."""
    async with asyncio.timeout(30):
        while process.returncode is None:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
    raise RuntimeError(f"{name} exited at start-up")
