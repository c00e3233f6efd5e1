"""Open sockets, so that a graceful shutdown can close them with 1001 (going away)."""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from fastapi import WebSocket


class ConnectionRegistry:
    def __init__(self) -> None:
        self._sockets: set[WebSocket] = set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._sockets)

    @contextmanager
    def track(self, websocket: WebSocket) -> Iterator[None]:
        self._sockets.add(websocket)
        try:
            yield
        finally:
            self._sockets.discard(websocket)

    async def close_all(self, code: int, reason: str) -> None:
        for websocket in list(self._sockets):
            with suppress(Exception):  # already gone
                await websocket.close(code, reason)
