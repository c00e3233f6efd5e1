"""A loopback TCP proxy that can break the network between the app and a server.

`with FaultProxy(host, port) as proxy:` listens on a free 127.0.0.1 port and forwards
every connection to `host:port` (PostgreSQL, Redis, or the app itself). It runs its
own event loop in a thread, so it serves an in-process server and an app started as
a separate uvicorn process alike, and its methods are plain calls:

- `cut()`: the server "goes away". Open connections are reset and new ones are reset
  as soon as they are accepted, until `restore()`.
- `freeze()`: a half-open peer. Connections stay open (new ones are accepted) but no
  byte and no close goes through in either direction, until `restore()` lets the held
  bytes through, as a healed network would.
- `restore()`: forward again.
"""

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, Self
from urllib.parse import urlsplit

CHUNK = 65536


class FaultProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cut = False
        self._flowing: asyncio.Event | None = None
        self.port = 0

    @classmethod
    def in_front_of(cls, url: str) -> "FaultProxy":
        """A proxy in front of the server named by `url` (`redis://`, `postgresql+asyncpg://`)."""
        parts = urlsplit(url)
        assert parts.hostname, url
        return cls(parts.hostname, parts.port or {"redis": 6379}.get(parts.scheme, 5432))

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (user, password and path kept)."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        host = f"127.0.0.1:{self.port}"
        return parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host).geturl()

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *_exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def cut(self) -> None:
        self._call(self._set(cut=True, flowing=True))

    def freeze(self) -> None:
        self._call(self._set(cut=False, flowing=False))

    def restore(self) -> None:
        self._call(self._set(cut=False, flowing=True))

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._set(cut=True, flowing=True)
        await self._server.wait_closed()

    async def _set(self, *, cut: bool, flowing: bool) -> None:
        assert self._flowing is not None
        self._cut = cut
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()
        if cut:
            for writer in list(self._writers):
                _reset(writer)
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            _reset(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        self._writers |= {writer, upstream_writer}
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()  # frozen: hold the bytes, stop reading
                if self._cut:
                    break
                writer.write(data)
                await writer.drain()
            await self._flowing.wait()  # a frozen peer does not see the other side close
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (RST), as a crashed server or a dropped route looks."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
