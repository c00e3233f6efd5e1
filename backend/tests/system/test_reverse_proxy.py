"""The app behind Debian's nginx running deploy/nginx.conf (see tests/support/nginx.py).

Through the proxy: a WebSocket chat works, streamed answers arrive as they are written
(not buffered), rate limits count the real client (TRUSTED_PROXIES), and a client that
sends its request header too slowly is cut off by the proxy. The last two run behind
deploy/Caddyfile too; test_caddy.py has Caddy's chat and stream.
"""

from pathlib import Path

import pytest

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.caddy import CADDY, caddy_in_front
from tests.support.nginx import NGINX, nginx_in_front
from tests.support.proxied import (
    STREAMS,
    TOKEN_DELAY,
    TOKENS,
    Front,
    behind,
    first_chunk,
    slow_header_client,
    statuses_from_two_clients,
    websocket_chat,
)

NEEDS_NGINX = pytest.mark.skipif(
    not NGINX.exists(), reason="needs Debian's nginx: apt-get install nginx"
)
NEEDS_CADDY = pytest.mark.skipif(
    CADDY is None, reason="needs Debian's caddy: apt-get install caddy"
)
# Each shipped configuration, with the Host its site answers to.
FRONTS = [
    pytest.param(nginx_in_front, "chat.example.com", id="nginx", marks=NEEDS_NGINX),
    pytest.param(caddy_in_front, "127.0.0.1", id="caddy", marks=NEEDS_CADDY),
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The proxy is under test, not storage: SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"


@NEEDS_NGINX
async def test_a_websocket_chat_works_through_nginx(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["She ", "builds ", "backends."]))
    async with behind(nginx_in_front, make_settings) as proxy:
        session, frames = await websocket_chat(proxy, "What does she do?")
    assert session["type"] == "session"
    assert frames[-1]["type"] == "done"
    assert "".join(frame["data"] for frame in frames[:-1]) == "She builds backends."
    assert frames[-1]["data"]["content"] == "She builds backends."


@NEEDS_NGINX
@pytest.mark.parametrize("kind", list(STREAMS))
async def test_a_streamed_answer_is_not_buffered_by_nginx(
    kind: str, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    path, body, is_text = STREAMS[kind]
    fake_llm.script(Reply(tokens=["Hi."]), *[Reply(tokens=TOKENS, token_delay=TOKEN_DELAY)] * 2)
    settings = make_settings(trusted_proxies="127.0.0.1")
    async with running_app(settings) as app_port, nginx_in_front(app_port) as proxy:
        direct_url = f"http://127.0.0.1:{app_port}{path}"
        await first_chunk(direct_url, body, lambda _line: True)  # a first, cold request
        direct, direct_end = await first_chunk(direct_url, body, is_text)
        first, ended = await first_chunk(f"{proxy.url}{path}", body, is_text)
    print(
        f"\n{kind}: first chunk {first * 1000:.0f} ms via nginx, {direct * 1000:.0f} ms direct;"
        f" end {ended * 1000:.0f} ms via nginx, {direct_end * 1000:.0f} ms direct"
    )
    # The model takes (len(TOKENS) - 1) * TOKEN_DELAY = 2.7 s after its first token: a
    # buffered stream would show its first chunk near its end.
    assert ended - first >= 2.0
    assert first - direct < 1.0  # TLS and one more hop, not a wait for the answer


@pytest.mark.parametrize(("front", "host"), FRONTS)
async def test_rate_limits_count_the_real_client_not_the_proxy(
    front: Front, host: str, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    limits = {"rate_limit_questions_per_ip": "2/minute"}
    async with behind(front, make_settings, **limits) as proxy:
        # The X-Forwarded-For the first client sends is not believed: nginx appends the
        # peer to it, Caddy trusts no client's.
        statuses, other = await statuses_from_two_clients(f"{proxy.url}/api/chat")
    assert statuses == [200, 200, 429]
    assert other == 200


@pytest.mark.parametrize(("front", "host"), FRONTS)
async def test_a_client_sending_its_header_slowly_is_cut_off_by_the_proxy(
    front: Front, host: str, make_settings: SettingsFactory
) -> None:
    async with behind(front, make_settings) as proxy:
        answer, cut_after = await slow_header_client(proxy.port, host)
    print(f"\n{host}: a slow-header client was cut after {cut_after:.1f} s")
    if front is nginx_in_front:
        assert answer == b""  # closed with no response
    else:
        assert b"200 OK" not in answer
    assert 9 <= cut_after <= 15, cut_after  # client_header_timeout / read_header: 10 s
