"""Rate limits, connection caps, origins and abuse controls, over real sockets."""

import asyncio
import uuid

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limits_storage(request: pytest.FixtureRequest) -> dict[str, object]:
    """Settings for limits kept in memory or, with TEST_REDIS_URL, in Redis."""
    if request.param == "memory":
        return {}
    # A fresh prefix per test keeps tests sharing one Redis apart.
    url = request.getfixturevalue("redis_url")
    return {"redis_url": url, "redis_key_prefix": f"test-{uuid.uuid4()}"}


async def test_questions_per_ip_are_limited_across_sessions(
    make_settings: SettingsFactory, limits_storage: dict[str, object]
) -> None:
    settings = make_settings(rate_limit_questions_per_ip="2/minute", **limits_storage)
    async with running_app(settings) as port:
        async with chat(port) as first:
            assert (await first.ask("One?")).final["type"] == "done"
            assert (await first.ask("Two?")).final["type"] == "done"
            refused = (await first.ask("Three?")).final
            await first.send({"type": "ping"})
            assert (await first.receive())["type"] == "pong"  # the socket stays open
        async with chat(port) as second:  # a new session does not reset the per-IP limit
            again = (await second.ask("Four?")).final
    for error in (refused, again):
        assert error["type"] == "error"
        assert error["data"]["code"] == "rate_limited"
        assert 0 < error["data"]["retry_after"] <= 60


async def test_rate_limit_resets_when_its_window_passes(
    make_settings: SettingsFactory, limits_storage: dict[str, object]
) -> None:
    settings = make_settings(rate_limit_questions_per_session="1/second", **limits_storage)
    async with running_app(settings) as port, chat(port) as client:
        assert (await client.ask("One?")).final["type"] == "done"
        assert (await client.ask("Two?")).final["data"]["code"] == "rate_limited"
        await asyncio.sleep(1.1)
        assert (await client.ask("Three?")).final["type"] == "done"


async def test_connections_per_ip_are_capped_at_the_handshake(
    make_settings: SettingsFactory, limits_storage: dict[str, object]
) -> None:
    settings = make_settings(max_connections_per_ip=2, **limits_storage)
    async with running_app(settings) as port:
        async with chat(port), chat(port):
            with pytest.raises(InvalidStatus) as refused:
                async with chat(port):
                    pass
        async with chat(port) as freed:  # closing one frees its place
            assert freed.session["type"] == "session"
    assert refused.value.response.status_code == 429
    assert b"rate_limited" in refused.value.response.body


async def test_forwarded_for_counts_only_from_trusted_proxies(
    make_settings: SettingsFactory,
) -> None:
    untrusted = make_settings(rate_limit_questions_per_ip="1/minute")
    async with running_app(untrusted) as port:
        async with chat(port, headers={"X-Forwarded-For": "203.0.113.1"}) as client:
            await client.ask("One?")
        async with chat(port, headers={"X-Forwarded-For": "203.0.113.2"}) as spoofer:
            spoofed = await spoofer.ask("Two?")
    assert spoofed.final["data"]["code"] == "rate_limited"

    trusted = make_settings(rate_limit_questions_per_ip="1/minute", trusted_proxies="127.0.0.1")
    async with running_app(trusted) as port:
        for visitor in ("203.0.113.1", "203.0.113.2"):
            async with chat(port, headers={"X-Forwarded-For": visitor}) as client:
                assert (await client.ask("Hi?")).final["type"] == "done"
        async with chat(port, headers={"X-Forwarded-For": "203.0.113.1"}) as client:
            assert (await client.ask("Again?")).final["data"]["code"] == "rate_limited"


async def _ask_as(port: int, address: str) -> int:
    """A REST question forwarded for `address` by the trusted proxy (127.0.0.1); its status."""
    async with httpx.AsyncClient(timeout=30) as http:
        reply = await http.post(
            f"http://127.0.0.1:{port}/api/chat",
            json={"message": "Hi?"},
            headers={"X-Forwarded-For": address},
        )
    return reply.status_code


async def test_ipv6_clients_are_limited_per_64_and_loopback_once(
    make_settings: SettingsFactory, limits_storage: dict[str, object]
) -> None:
    settings = make_settings(
        rate_limit_questions_per_ip="10/minute", trusted_proxies="127.0.0.1", **limits_storage
    )
    async with running_app(settings) as port:
        one_64 = [await _ask_as(port, f"2001:db8:7:8:{n:x}::{n + 1:x}") for n in range(25)]
        next_64 = await _ask_as(port, "2001:db8:7:9::1")
        loopback = [await _ask_as(port, ip) for ip in ["127.0.0.1", "::1"] * 6]
    through = one_64.count(200)
    print(f"\n{through} of 25 questions from one /64 through a 10/minute limit")
    assert one_64 == [200] * 10 + [429] * 15
    assert next_64 == 200  # another network has its own allowance
    assert loopback == [200] * 10 + [429] * 2  # 127.0.0.1 and ::1 share one


async def test_one_ipv6_network_shares_one_daily_token_budget(
    make_settings: SettingsFactory,
) -> None:
    # One answer spends more than 500 tokens: the budget has room for exactly one.
    settings = make_settings(budget_tokens_per_ip_per_day=500, trusted_proxies="127.0.0.1")
    async with running_app(settings) as port:
        first = await _ask_as(port, "2001:db8:7:8::1")
        same_64 = await _ask_as(port, "2001:db8:7:8::2")
        next_64 = await _ask_as(port, "2001:db8:7:9::1")
    assert (first, same_64, next_64) == (200, 429, 200)


async def test_websocket_origin_must_be_allowed(make_settings: SettingsFactory) -> None:
    settings = make_settings(allowed_origins="HTTPS://Maya.Example:443/")  # = https://maya.example
    async with running_app(settings) as port:
        with pytest.raises(InvalidStatus) as refused:
            async with chat(port, headers={"Origin": "https://evil.example"}):
                pass
        async with chat(port, headers={"Origin": "https://maya.example"}) as client:
            assert client.session["type"] == "session"
        async with chat(port) as no_origin:  # curl, scripts and servers send none
            assert no_origin.session["type"] == "session"
        async with httpx.AsyncClient() as http:
            base = f"http://127.0.0.1:{port}/health"
            good = await http.get(base, headers={"Origin": "https://maya.example"})
            bad = await http.get(base, headers={"Origin": "https://evil.example"})
    assert refused.value.response.status_code == 403
    assert good.headers["access-control-allow-origin"] == "https://maya.example"
    assert "access-control-allow-origin" not in bad.headers


async def test_cors_for_the_ai_sdk_follows_allowed_origins_with_a_trailing_slash(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    """`https://site.example/` as written in ALLOWED_ORIGINS lets that site's useChat in."""
    fake_llm.script(Reply(tokens=["Hi."]))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    body = {
        "id": "Hx9cTqLwA2mVb7Rk",
        "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hi?"}]}],
        "trigger": "submit-message",
    }
    settings = make_settings(allowed_origins="https://site.example/")
    async with running_app(settings) as port, httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{port}/api/ui/chat"
        site = {"Origin": "https://site.example"}
        allowed = await http.options(url, headers=site | preflight)
        asked = await http.post(url, json=body, headers=site)
        other = await http.options(url, headers={"Origin": "https://evil.example"} | preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://site.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()
    assert asked.headers["access-control-allow-origin"] == "https://site.example"
    assert '"text-delta"' in asked.text
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


async def test_long_questions_and_frames_are_refused_with_the_limit(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings(max_message_tokens=20, ws_max_frame_bytes=1024)
    async with running_app(settings) as port, chat(port) as client:
        too_many_tokens = await client.ask("word " * 30)
        await client.send('{"type": "message", "data": "' + "x" * 2000 + '"}')
        too_big = await client.receive()
        control = await client.ask("hello\x07bell")
        fine = await client.ask("A short question?")
    assert too_many_tokens.final["data"]["code"] == "message_too_long"
    assert "20 tokens" in too_many_tokens.final["data"]["message"]
    assert too_big["data"]["code"] == "message_too_long"
    assert "1024 bytes" in too_big["data"]["message"]
    assert control.final["data"]["code"] == "invalid_message"
    assert fine.final["type"] == "done"
    assert len(fake_llm.requests) == 1


async def test_an_idle_socket_is_closed_but_not_while_an_answer_streams(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["a ", "b ", "c ", "d"], token_delay=0.3))
    async with running_app(make_settings(ws_idle_timeout=0.5)) as port, chat(port) as client:
        answer = await client.ask("Slow answer?")  # 0.9 s of streaming, no frames sent
        assert answer.final["type"] == "done"
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1000
    assert closed.value.rcvd.reason == "idle timeout"


async def test_a_session_has_a_maximum_number_of_questions(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    async with running_app(make_settings(max_turns_per_session=2)) as port:
        async with chat(port) as client:
            await client.ask("One?")
            await client.ask("Two?")
            third = await client.ask("Three?")
        async with chat(port) as fresh:
            assert (await fresh.ask("New chat?")).final["type"] == "done"
    assert third.final["data"]["code"] == "session_limit_reached"
    assert len(fake_llm.requests) == 3


@pytest.mark.redis
async def test_two_app_instances_sharing_redis_enforce_one_limit(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    shared = {
        "redis_url": redis_url,
        "redis_key_prefix": f"test-{uuid.uuid4()}",
        "rate_limit_questions_per_ip": "3/minute",
    }
    async with running_app(make_settings(**shared)) as a, running_app(make_settings(**shared)) as b:
        answers = []
        for port in (a, b, a, b):
            async with chat(port) as client:
                answers.append((await client.ask("Hello?")).final)
    assert [f["type"] for f in answers] == ["done", "done", "done", "error"]
    assert answers[-1]["data"]["code"] == "rate_limited"
