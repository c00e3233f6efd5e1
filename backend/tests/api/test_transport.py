"""AiohttpTransport: its TLS settings (made on the first https request, never for plain
http), the raw body read from aiohttp itself, and idle connections kept for
LLM_KEEPALIVE_SECONDS."""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from app.llm.client import create_http_client
from app.llm.transport import AiohttpTransport, raw_body

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


@asynccontextmanager
async def serving(tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A loopback server answering every request `200 ok`, over TLS with `tls`; its port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(RESPONSE)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_tls_settings_are_made_once_on_the_first_https_request(
    certificate: tuple[Path, Path],
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*certificate)
    made: list[ssl.SSLContext] = []

    def trusting_the_test_certificate() -> ssl.SSLContext:
        made.append(ssl.create_default_context(cafile=certificate[0]))
        return made[-1]

    transport = AiohttpTransport(httpx.Limits(), trusting_the_test_certificate)
    async with (
        serving() as plain,
        serving(server_tls) as secure,
        httpx.AsyncClient(transport=transport) as http,
    ):
        assert (await http.get(f"http://127.0.0.1:{plain}/")).text == "ok"
        assert made == []
        for _ in range(2):
            assert (await http.get(f"https://127.0.0.1:{secure}/")).text == "ok"
    assert len(made) == 1


async def test_https_checks_the_certificate_against_httpxs_trust_store(
    certificate: tuple[Path, Path],
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*certificate)
    async with (
        serving(server_tls) as secure,
        httpx.AsyncClient(transport=AiohttpTransport(httpx.Limits())) as http,
    ):
        with pytest.raises(httpx.ConnectError):
            await http.get(f"https://127.0.0.1:{secure}/")


async def test_the_raw_body_is_read_from_aiohttp_itself_not_through_httpx() -> None:
    async with (
        serving() as port,
        httpx.AsyncClient(transport=AiohttpTransport(httpx.Limits())) as http,
        http.stream("GET", f"http://127.0.0.1:{port}/") as response,
    ):
        chunks = raw_body(response)
        assert getattr(chunks, "__qualname__", None) == "_Body.__aiter__"  # not httpx's aiter_raw
        assert b"".join([chunk async for chunk in chunks]) == b"ok"

    async with (
        httpx.AsyncClient(
            transport=httpx.MockTransport(
                lambda _: httpx.Response(200, stream=httpx.ByteStream(b"ok"))
            )
        ) as http,
        http.stream("GET", "http://test/") as response,
    ):
        chunks = raw_body(response)  # another transport's: through httpx
        assert getattr(chunks, "__qualname__", None) == "Response.aiter_raw"
        assert b"".join([chunk async for chunk in chunks]) == b"ok"


@asynccontextmanager
async def counting_connections(
    idle_close: float | None = None,
) -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback server answering `200 ok`, which closes a connection idle for
    `idle_close` seconds (as uvicorn does after 5); its port, and the client port of every
    connection it accepted."""
    accepted: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername")[1])
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            while await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), idle_close):
                writer.write(RESPONSE)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], accepted


@pytest.mark.parametrize(("keepalive", "connections"), [(3.0, 1), (0.3, 2)])
async def test_an_idle_provider_connection_is_kept_for_llm_keepalive_seconds(
    keepalive: float, connections: int
) -> None:
    """The second question, asked after a pause of 1 s, reuses the first one's connection
    when LLM_KEEPALIVE_SECONDS is longer than the pause, and opens a new one otherwise."""
    settings = Settings(_env_file=None, llm_keepalive_seconds=keepalive)
    async with counting_connections() as (port, accepted), create_http_client(settings) as http:
        for pause in (0.0, 1.0):
            await asyncio.sleep(pause)
            assert (await http.post(f"http://127.0.0.1:{port}/v1/chat/completions")).text == "ok"
    assert len(accepted) == connections


def test_provider_connections_outlive_a_visitors_reading_pause_by_default() -> None:
    """httpx's 5 s would close the connection before most follow-up questions."""
    assert Settings(_env_file=None).llm_keepalive_seconds == 120.0


async def test_a_provider_closing_idle_connections_sooner_costs_the_next_question_nothing() -> None:
    """A provider whose keep-alive is shorter than LLM_KEEPALIVE_SECONDS (a local server
    on uvicorn's 5 s) closes the pooled connection: the next request opens a new one."""
    settings = Settings(_env_file=None, llm_keepalive_seconds=30)
    async with (
        counting_connections(idle_close=0.2) as (port, accepted),
        create_http_client(settings) as http,
    ):
        for pause in (0.0, 0.6):
            await asyncio.sleep(pause)
            assert (await http.post(f"http://127.0.0.1:{port}/v1/chat/completions")).text == "ok"
    assert len(accepted) == 2
