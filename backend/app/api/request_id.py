"""A request id on every HTTP request and WebSocket: from `X-Request-ID`, or a new one.

It appears on every log line of that request and in the `X-Request-ID` response header.
"""

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
