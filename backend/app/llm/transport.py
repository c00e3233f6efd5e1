"""An httpx transport on aiohttp: httpx's API for the rest of the code, aiohttp on the wire.

Reading a streamed answer through httpx's own transport costs, per network read, the
httpcore and h11 layers and an anyio cancel scope; aiohttp parses HTTP in C and hands
over whatever bytes arrived. Its connection pool also keeps idle connections without
httpcore's O(idle x all) scan, so every stream can reuse one. The LLM client alone spends
about 40 % less CPU per answer this way (bench/PERFORMANCE.md, issue 18).

httpx-aiohttp (what the OpenAI SDK uses) does the same, but maps a refused connection to
`ConnectTimeout` and a dropped one to a timeout; here each aiohttp failure becomes the
httpx error a caller of httpx expects, so `LLMClient` tells timeouts from outages as before.
"""

import contextlib
import ssl
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import cast

import aiohttp
import httpx

# aiohttp's failures, most specific first, as the httpx errors they correspond to.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
    (aiohttp.ClientError, httpx.TransportError),
    (TimeoutError, httpx.PoolTimeout),  # aiohttp's `connect` limit: waiting for the pool
)


_BODY = "aiohttp_body"  # the response's extension holding its `_Body`


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        kind = next(kind for source, kind in _ERRORS if isinstance(exc, source))
        raise kind(str(exc) or type(exc).__name__) from exc


class _Body(httpx.AsyncByteStream):
    """The response body as aiohttp receives it; closing before its end drops the connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncGenerator[bytes]:
        with _as_httpx_errors():
            async for data in self._response.content.iter_any():
                yield data

    def on_end(self, callback: Callable[[], None]) -> None:
        self._response.content.on_eof(callback)

    async def aclose(self) -> None:
        self._response.release()  # back to the pool once read to the end, else closed


def raw_body(response: httpx.Response) -> AsyncGenerator[bytes]:
    """The body's bytes as they arrive, undecoded: from aiohttp itself for a response of
    this transport (httpx's `aiter_raw` adds a generator and its bookkeeping to every read
    of a stream, once per token), else through `aiter_raw`."""
    body = _body_of(response)
    if body is not None:
        return body.__aiter__()
    return cast(AsyncGenerator[bytes], response.aiter_raw())


def on_body_end(response: httpx.Response, callback: Callable[[], None]) -> None:
    """Call `callback` once the body has all arrived (read or not), for a response of this
    transport; another transport's never calls it."""
    body = _body_of(response)
    if body is not None:
        body.on_end(callback)


def _body_of(response: httpx.Response) -> _Body | None:
    """This transport's body of `response` (httpx wraps `response.stream` in its own)."""
    body = response.extensions.get(_BODY)
    return body if isinstance(body, _Body) else None


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session with a pool of `limits.max_connections`, each kept alive for
    `limits.keepalive_expiry` once idle (`LLM_KEEPALIVE_SECONDS`).

    `tls` makes the TLS settings of https requests (httpx's by default); it is called on
    the first one, since loading a CA bundle costs more CPU than all else the transport
    does before a first answer, and a provider on plain http never needs it.
    """

    def __init__(
        self,
        limits: httpx.Limits,
        tls: Callable[[], ssl.SSLContext] = httpx.create_ssl_context,
    ) -> None:
        self._limits = limits
        self._tls = tls
        self._tls_context: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """Made on first use: aiohttp binds its session to the running event loop."""
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry or 15.0,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx decodes content-encoding itself
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),  # httpx sets them
        )

    def _ssl(self, url: httpx.URL) -> ssl.SSLContext | bool:
        if url.scheme != "https":
            return True  # aiohttp's default, unused without TLS
        if self._tls_context is None:
            self._tls_context = self._tls()
        return self._tls_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        try:
            body: bytes | httpx.AsyncByteStream | None = request.content or None
        except httpx.RequestNotRead:
            body = request.stream  # type: ignore[assignment]
        with _as_httpx_errors():
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body,
                allow_redirects=False,
                compress=None,
                ssl=self._ssl(request.url),
                timeout=aiohttp.ClientTimeout(
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        body = _Body(response)
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=body,
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode(),
                _BODY: body,
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
