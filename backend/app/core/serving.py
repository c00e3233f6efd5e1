"""Serve an ASGI app under a real uvicorn server on a free loopback port, in the caller's loop:
the `resume-chat eval` command serves the app this way, and tests, benchmarks and the
stand-in provider (devtools) do too."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


class ServerStartError(RuntimeError):
    """The server did not start; uvicorn logged why."""


class EmbeddedServer(uvicorn.Server):
    """uvicorn's server for a test or a benchmark: it leaves signals to the host process, so
    Ctrl+C interrupts pytest at once, and `stop()` ends it at once.

    uvicorn notices `should_exit` on a 0.1 s tick, then sleeps 0.1 s after asking its
    connections to close and polls them every 0.1 s: about 0.2 s per server, which was a
    fifth of the inner test loop (two servers per test). Here the tick wakes on `stop()`
    and the shutdown polls every few milliseconds; what it waits for is unchanged (open
    connections and tasks, up to `timeout_graceful_shutdown`, then the lifespan).
    """

    POLL_SECONDS = 0.005

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self.should_exit = True
        self._stopping.set()

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.1)  # uvicorn's tick

    def _busy(self) -> bool:
        state = self.server_state
        return bool(state.connections or state.tasks) and not self.force_exit

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                while self._busy():  # noqa: ASYNC110 (uvicorn keeps no event for this)
                    await asyncio.sleep(self.POLL_SECONDS)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    """uvicorn exits the process when start-up fails; in a test that is an error instead."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise ServerStartError(f"the server failed to start (exit code {exc.code})") from None


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
                    raise ServerStartError("the server failed to start; see the log above")
            yield sock.getsockname()[1]
        finally:
            server.stop()
            if not task.done():
                await task
