"""A webhook receiver on loopback for tests: records each POST, answers as told.

`statuses` are the answers to the next requests in order (then 200); `hold` makes the
next request wait, unanswered, until `release()` (or the server stops).
"""

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.core.serving import serve


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # when it arrived (Unix seconds)

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def signed_with(self, secret: str) -> bool:
        """The check docs/leads.md tells receivers to make."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("x-resume-chat-signature", ""))


@dataclass
class WebhookReceiver:
    received: list[Received] = field(default_factory=list)  # answered 2xx
    attempts: list[Received] = field(default_factory=list)  # everything that arrived
    statuses: list[int] = field(default_factory=list)
    hold_next: bool = False
    url: str = ""
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    def release(self) -> None:
        self._released.set()

    async def wait_for(self, count: int, seconds: float = 10.0, *, answered: bool = True) -> None:
        """Until `count` requests were answered 2xx (or, with answered=False, arrived)."""
        seen = self.received if answered else self.attempts
        async with asyncio.timeout(seconds), self._arrived:
            await self._arrived.wait_for(lambda: len(seen) >= count)

    async def _hook(self, request: Request) -> Response:
        got = Received({k.lower(): v for k, v in request.headers.items()}, await request.body())
        async with self._arrived:
            self.attempts.append(got)
            self._arrived.notify_all()
        if self.hold_next:
            self.hold_next = False
            await self._released.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        if 200 <= status < 300:
            async with self._arrived:
                self.received.append(got)
                self._arrived.notify_all()
        return Response(status_code=status)


@asynccontextmanager
async def webhook_receiver(
    receiver: WebhookReceiver | None = None, port: int = 0
) -> AsyncIterator[WebhookReceiver]:
    receiver = receiver or WebhookReceiver()
    async with serve(receiver.app(), lifespan="off", port=port) as bound:
        receiver.url = f"http://127.0.0.1:{bound}/hook"
        try:
            yield receiver
        finally:
            receiver.release()
