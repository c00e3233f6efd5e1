"""Connection and stream slots on Redis are leases: a killed instance's free themselves.

Real `resume-chat serve` processes sharing one Redis. Run with `-s` to see the seconds
a killed instance's slots took to come free (`SLOT_LEASE_SECONDS=3` here).
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devtools.fake_llm import FakeLLM, Reply
from tests.support.app import uvicorn_process
from tests.support.chat_client import ChatClient, chat

LEASE_SECONDS = 3
# The promise: a dead instance's slots are free within a minute while traffic goes on.
FREED_WITHIN = 60.0


def _settings(
    fake_llm: FakeLLM, tmp_path: Path, redis_url: str, **overrides: str
) -> dict[str, str]:
    return {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "redis_url": redis_url,
        "redis_key_prefix": f"test-{uuid.uuid4()}",
        "rate_limit_questions_per_ip": "1000/minute",
        "rate_limit_questions_per_session": "1000/minute",
        "rate_limit_new_sessions_per_ip": "1000/minute",
        "slot_lease_seconds": str(LEASE_SECONDS),
    } | overrides


async def _socket_admitted(port: int) -> bool:
    try:
        async with chat(port):
            return True
    except InvalidStatus as refused:
        status = refused.response.status_code
    assert status == 429
    return False


async def _question_admitted(port: int) -> bool:
    """A REST question: it takes a stream slot (and no connection slot)."""
    async with httpx.AsyncClient(timeout=30) as http:
        reply = await http.post(f"http://127.0.0.1:{port}/api/chat", json={"message": "Hi?"})
    if reply.status_code == 429:
        assert reply.json()["error"]["code"] == "rate_limited"
        return False
    assert reply.status_code == 200, reply.text
    return True


async def _admitted(port: int) -> bool:
    """Both a socket and a question, against every cap involved."""
    return await _socket_admitted(port) and await _question_admitted(port)


async def _refusals_until(admitted: Callable[[int], Awaitable[bool]], port: int) -> int:
    """Keep knocking (traffic goes on) until admitted; how many times it was refused."""
    refused = 0
    while True:
        if await admitted(port):
            return refused
        refused += 1
        await asyncio.sleep(0.2)


async def _read_until_closed(client: ChatClient) -> None:
    while True:
        await client.receive()


async def test_a_killed_instances_slots_free_within_a_lease_while_traffic_continues(
    fake_llm: FakeLLM, tmp_path: Path, redis_url: str
) -> None:
    settings = _settings(
        fake_llm, tmp_path, redis_url, max_connections_per_ip="2", max_concurrent_streams="1"
    )
    fake_llm.default = Reply(tokens=[f"word{i} " for i in range(2000)], token_delay=0.05)
    loop = asyncio.get_running_loop()
    async with (
        uvicorn_process(**settings) as (survivor, _),
        uvicorn_process(**settings) as (doomed, process),
    ):
        async with chat(doomed), chat(doomed) as streaming:
            await streaming.send({"type": "message", "data": "Tell me everything."})
            assert (await streaming.receive())["type"] == "chunk"
            socket_before = await _socket_admitted(survivor)
            question_before = await _question_admitted(survivor)
            process.kill()
            killed_at = loop.time()
            await process.wait()
            with pytest.raises(ConnectionClosed):
                await _read_until_closed(streaming)
        fake_llm.default = Reply()
        async with asyncio.timeout(FREED_WITHIN):
            refused = await _refusals_until(_admitted, survivor)
        freed_after = loop.time() - killed_at
    print(
        f"\nslots of a kill -9'd instance free after {freed_after:.1f} s "
        f"(SLOT_LEASE_SECONDS={LEASE_SECONDS}; {refused} refused attempts meanwhile)"
    )
    assert (socket_before, question_before) == (False, False)


async def test_a_live_instance_keeps_its_slots_past_several_leases(
    fake_llm: FakeLLM, tmp_path: Path, redis_url: str
) -> None:
    settings = _settings(
        fake_llm, tmp_path, redis_url, max_connections_per_ip="1", slot_lease_seconds="1"
    )
    async with uvicorn_process(**settings) as (a, _), uvicorn_process(**settings) as (b, _):
        async with chat(a) as holder:
            refusals = []
            for _ in range(6):  # six seconds: six leases, renewed by the heartbeat
                refusals.append(await _socket_admitted(b))
                await asyncio.sleep(1)
            await holder.send({"type": "ping"})
            assert (await holder.receive())["type"] == "pong"
        async with asyncio.timeout(10):  # closing frees the slot at once, here or there
            await _refusals_until(_socket_admitted, b)
    assert refusals == [False] * 6
