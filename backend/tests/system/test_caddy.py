"""The app behind Debian's Caddy running deploy/Caddyfile (see tests/support/caddy.py).

The same checks as behind nginx (test_reverse_proxy.py): a WebSocket chat works through
it, a streamed answer arrives as it is written, rate limits count the real client, and a
client that sends its request header too slowly is cut off by the proxy.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.caddy import CADDY, caddy_in_front
from tests.support.nginx import Proxy, client_tls
from tests.support.proxied import STREAMS, TOKEN_DELAY, TOKENS, client_from, first_chunk

pytestmark = pytest.mark.skipif(CADDY is None, reason="needs Debian's caddy: apt-get install caddy")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The proxy is under test, not storage: SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


@asynccontextmanager
async def behind_caddy(make_settings: SettingsFactory, **overrides: object) -> AsyncIterator[Proxy]:
    settings = make_settings(trusted_proxies="127.0.0.1", **overrides)
    async with running_app(settings) as app_port, caddy_in_front(app_port) as proxy:
        yield proxy


async def test_a_websocket_chat_and_an_unbuffered_stream_go_through_caddy(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        Reply(tokens=["She ", "builds."]), Reply(tokens=TOKENS, token_delay=TOKEN_DELAY)
    )
    path, body, is_text = STREAMS["AI SDK"]
    async with (
        behind_caddy(make_settings) as proxy,
        connect(proxy.ws_url, ssl=client_tls()) as socket,
    ):
        session = json.loads(await socket.recv())
        await socket.send(json.dumps({"type": "message", "data": "What does she do?"}))
        frames = [json.loads(await socket.recv())]
        while frames[-1]["type"] == "chunk":
            frames.append(json.loads(await socket.recv()))
        first, ended = await first_chunk(f"{proxy.url}{path}", body, is_text)
    print(f"\nAI SDK via Caddy: first chunk {first * 1000:.0f} ms, end {ended * 1000:.0f} ms")
    assert session["type"] == "session"
    assert frames[-1]["data"]["content"] == "She builds."
    assert ended - first >= 2.0  # not buffered until the answer's end


async def test_rate_limits_count_the_real_client_behind_caddy(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    question = {"message": "Hi?"}
    async with behind_caddy(make_settings, rate_limit_questions_per_ip="2/minute") as proxy:
        url = f"{proxy.url}/api/chat"
        async with client_from("127.0.0.2") as first, client_from("127.0.0.3") as second:
            spoofed = {"X-Forwarded-For": "203.0.113.9"}  # not believed: Caddy trusts no client
            statuses = [
                (await first.post(url, json=question, headers=spoofed)).status_code
                for _ in range(3)
            ]
            other = await second.post(url, json=question)
    assert statuses == [200, 200, 429]
    assert other.status_code == 200


async def test_a_client_sending_its_header_slowly_is_cut_off_by_caddy(
    make_settings: SettingsFactory,
) -> None:
    async with behind_caddy(make_settings) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port, ssl=client_tls())
        started = time.monotonic()
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        async def trickle() -> None:
            for index in range(30):
                await asyncio.sleep(1)
                writer.write(f"X-Slow-{index}: 1\r\n".encode())
                await writer.drain()

        dripping = asyncio.create_task(trickle())
        try:
            async with asyncio.timeout(25):
                answer = await reader.read()
        except ConnectionResetError:
            answer = b""
        finally:
            dripping.cancel()
            writer.close()
        cut_after = time.monotonic() - started
    print(f"\nCaddy cut a slow-header client after {cut_after:.1f} s")
    assert b"200 OK" not in answer
    assert 9 <= cut_after <= 15, cut_after  # read_header 10s
