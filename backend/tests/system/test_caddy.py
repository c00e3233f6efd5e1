"""The app behind Debian's Caddy running deploy/Caddyfile (see tests/support/caddy.py).

A WebSocket chat works through it and a streamed answer arrives as it is written; the
rate-limit and slow-header checks run behind Caddy and nginx alike in test_reverse_proxy.py.
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
