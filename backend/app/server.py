"""How `resume-chat serve` runs the app: uvicorn with settings that are safe by default.

uvicorn's defaults suit a trusted network, not the open internet: it believes
`X-Forwarded-For` from 127.0.0.1, buffers 16 MiB WebSocket messages before the app sees
them, inflates compressed frames (a 14 KiB frame can become 15 MB), and reads request
headers for as long as a client cares to send them. Here instead:

- forwarded headers are left to the app, which believes them only from `TRUSTED_PROXIES`;
- a WebSocket message over twice `WS_MAX_FRAME_BYTES` closes its socket (1009) before it
  is buffered, and per-message deflate is off;
- request headers must arrive within `HTTP_HEADER_TIMEOUT` seconds (else 408) and
  within `MAX_HEADER_BYTES` (else 431), on new and kept-alive connections alike;
- REST bodies over `MAX_REQUEST_BODY_BYTES` are refused by the app itself
  (`app.api.middleware.BodyLimit`), whichever server runs it;
- uvloop, httptools and the sans-I/O websockets implementation, named rather than
  left to `auto` (bench/PERFORMANCE.md), no `Server` header, and uvicorn's own log
  level (its access log included) from `LOG_LEVEL`.
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import Settings

APP = "app.main:app"
MAX_HEADER_BYTES = 65_536  # request line and headers together; nginx allows 4 x 8 KiB
DEFAULT_HEADER_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the command line may override; None means the setting (`HOST`, `PORT`)."""

    host: str | None = None
    port: int | None = None
    workers: int = 1
    reload: bool = False
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    log_config: str | None = None


def uvicorn_options(settings: Settings, options: ServeOptions) -> dict[str, Any]:
    """The keyword arguments of `uvicorn.run` for this app."""
    extra: dict[str, Any] = {"log_config": options.log_config} if options.log_config else {}
    return {
        "app": APP,
        "host": options.host or settings.host,
        "port": options.port if options.port is not None else settings.port,
        "workers": options.workers,
        "reload": options.reload,
        "loop": "uvloop",
        "http": f"{__name__}:GuardedHttpToolsProtocol",
        "ws": "websockets-sansio",
        "ws_max_size": 2 * settings.ws_max_frame_bytes,
        "ws_per_message_deflate": False,
        "ws_ping_interval": options.ws_ping_interval,
        "ws_ping_timeout": options.ws_ping_timeout,
        "proxy_headers": False,
        "server_header": False,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "log_level": "debug" if settings.debug else settings.log_level.lower(),
        **extra,
    }


def serve(settings: Settings, options: ServeOptions) -> None:
    uvicorn.run(**uvicorn_options(settings, options))


class _HeadersTooLargeError(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size cap on request headers.

    uvicorn arms no timer until a first response, and httptools keeps every header it
    is sent: a client trickling headers (or never sending any) holds a connection and
    memory for ever. The deadline, `HTTP_HEADER_TIMEOUT` from the app's settings, runs
    from the connection (or the first byte of each later request) to the end of the
    headers, WebSocket handshakes included.
    """

    _deadline: asyncio.TimerHandle | None
    _header_bytes: int
    _too_large: bool

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_bytes = 0
        self._too_large = False
        self._deadline = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse(431, "headers_too_large", "The request's headers are too large.")
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > (self.config.h11_max_incomplete_event_size or MAX_HEADER_BYTES):
            self._too_large = True
            raise _HeadersTooLargeError  # httptools stops parsing; uvicorn calls send_400_response

    def _arm(self) -> None:
        settings = self.app_state.get("settings")
        seconds = getattr(settings, "http_header_timeout", DEFAULT_HEADER_TIMEOUT)
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self._refuse(408, "request_timeout", "The request's headers took too long.")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """A response in the app's error shape, then close: the parser's state is spoilt."""
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        phrase = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}[status]
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, phrase),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()
