"""Serve an ASGI app under a real uvicorn server on a free loopback port, in the caller's loop."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


class EmbeddedServer(uvicorn.Server):
    """Leaves signals to the host process, so Ctrl+C interrupts pytest at once."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    """uvicorn exits the process when start-up fails; in a test that is an error instead."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise RuntimeError(f"the server failed to start (exit code {exc.code})") from None


@asynccontextmanager
async def serve(
    app: ASGIApp, *, lifespan: Literal["on", "off"] = "on", port: int = 0
) -> AsyncIterator[int]:
    """Serve `app` until the block ends; yields the port. Start-up failures are raised."""
    # The app's TRUSTED_PROXIES decides whom to believe about X-Forwarded-For, so
    # uvicorn's own proxy-header handling (trusting 127.0.0.1) is off, as docs/limits.md advises.
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        proxy_headers=False,
    )
    server = EmbeddedServer(config)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        task = asyncio.create_task(_serve(server, sock))
        try:
            while not server.started:
                await asyncio.wait([task], timeout=0.01)
                if task.done():
                    raise RuntimeError("the server failed to start; see the log above")
            yield sock.getsockname()[1]
        finally:
            server.should_exit = True
            if not task.done():
                await task
