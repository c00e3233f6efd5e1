"""The HTTP edge's middleware: request ids, CORS from settings, start-up errors in one line,
and a cap on request bodies.

A request id comes from `X-Request-ID` or is made anew; it appears on every log line of
that request and in the `X-Request-ID` response header.
"""

import re
import sys
import uuid

from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.core.config import Settings
from app.core.errors import StartupError
from app.core.logger import request_id_var
from app.core.redact import redact

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
    """Reports a `StartupError` as its one-line message instead of a traceback, with any
    password in a URL as `***` whichever part of the app raised it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_brief(message: Message) -> None:
            error = sys.exception()
            if message["type"] == "lifespan.startup.failed" and isinstance(error, StartupError):
                message = {**message, "message": f"Cannot start: {redact(error.message)}"}
            await send(message)

        await self.app(scope, receive, send_brief)


class _BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI passes HTTP exceptions from body reading through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes.")


class BodyLimit:
    """Refuses HTTP request bodies over MAX_REQUEST_BODY_BYTES with 413, never reading them whole.

    A `Content-Length` over the cap is answered at once, before the app runs or a byte
    of the body is read; a body without one (chunked) is counted as it is read and
    refused at the first chunk past the cap. Both answers have the app's error shape,
    code `content_too_large` (Starlette's own limiter answers in plain text). Whatever
    server runs the app, a body costs at most the cap plus one chunk.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings: Settings = scope["state"]["settings"]
        limit = settings.max_request_body_bytes
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _BodyTooLarge:
            if started:
                raise
            await _refuse(limit)(scope, receive, send)


def _refuse(limit: int) -> ASGIApp:
    message = f"Request bodies are limited to {limit} bytes."
    return error_response(413, "content_too_large", message)
