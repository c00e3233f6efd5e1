"""The app behind Debian's Caddy running deploy/Caddyfile (see tests/support/caddy.py).

The same checks as behind nginx (test_reverse_proxy.py): a WebSocket chat works through
it, a streamed answer arrives as it is written, rate limits count the real client, and a
client that sends its request header too slowly is cut off by the proxy.
"""

from pathlib import Path

import pytest

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.caddy import CADDY, caddy_in_front
from tests.support.proxied import (
    STREAMS,
    TOKEN_DELAY,
    TOKENS,
    behind,
    first_chunk,
    slow_header_client,
    statuses_from_two_clients,
    websocket_chat,
)

pytestmark = pytest.mark.skipif(CADDY is None, reason="needs Debian's caddy: apt-get install caddy")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The proxy is under test, not storage: SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


async def test_a_websocket_chat_and_an_unbuffered_stream_go_through_caddy(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        Reply(tokens=["She ", "builds."]), Reply(tokens=TOKENS, token_delay=TOKEN_DELAY)
    )
    path, body, is_text = STREAMS["AI SDK"]
    async with behind(caddy_in_front, make_settings) as proxy:
        session, frames = await websocket_chat(proxy, "What does she do?")
        first, ended = await first_chunk(f"{proxy.url}{path}", body, is_text)
    print(f"\nAI SDK via Caddy: first chunk {first * 1000:.0f} ms, end {ended * 1000:.0f} ms")
    assert session["type"] == "session"
    assert frames[-1]["data"]["content"] == "She builds."
    assert ended - first >= 2.0  # not buffered until the answer's end


async def test_rate_limits_count_the_real_client_behind_caddy(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    async with behind(
        caddy_in_front, make_settings, rate_limit_questions_per_ip="2/minute"
    ) as proxy:
        # The X-Forwarded-For the first client sends is not believed: Caddy trusts no client.
        statuses, other = await statuses_from_two_clients(f"{proxy.url}/api/chat")
    assert statuses == [200, 200, 429]
    assert other == 200


async def test_a_client_sending_its_header_slowly_is_cut_off_by_caddy(
    make_settings: SettingsFactory,
) -> None:
    async with behind(caddy_in_front, make_settings) as proxy:
        answer, cut_after = await slow_header_client(proxy.port, "127.0.0.1")
    print(f"\nCaddy cut a slow-header client after {cut_after:.1f} s")
    assert b"200 OK" not in answer
    assert 9 <= cut_after <= 15, cut_after  # read_header 10s
