"""The HTTP edge's middleware: request ids, CORS from settings, start-up errors in one line.

A request id comes from `X-Request-ID` or is made anew; it appears on every log line of
that request and in the `X-Request-ID` response header.
"""

import re
import sys
import uuid

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import StartupError
from app.core.logger import request_id_var

_ACCEPTABLE = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _ACCEPTABLE.fullmatch(given) else uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            # A socket's frames go straight through: only HTTP responses carry the header.
            wrapped = send_with_id if scope["type"] == "http" else send
            await self.app(scope, receive, wrapped)
        finally:
            request_id_var.reset(token)


class CORSFromSettings:
    """CORS for the REST routes from ALLOWED_ORIGINS, read when the app starts, not at import.

    Settings spell each origin as browsers send it (see `origin_of`), so an entry such as
    `https://Site.Example/` matches here exactly as it does on the socket.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._cors is None:
            settings: Settings = scope["state"]["settings"]
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Session-Id"],
                expose_headers=["X-Session-Id"],
                max_age=600,
            )
        await self._cors(scope, receive, send)


class StartupErrorReporter:
    """Reports a `StartupError` as its one-line message instead of a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_brief(message: Message) -> None:
            error = sys.exception()
            if message["type"] == "lifespan.startup.failed" and isinstance(error, StartupError):
                message = {**message, "message": f"Cannot start: {error.message}"}
            await send(message)

        await self.app(scope, receive, send_brief)
