"""The relay's writer (app/live/relay.py) against a real Redis: one pipeline per pass for
every answer streaming on the instance, a session's answers in order, and streams that
outlive a long silence of a live answer."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.redis import open_redis
from app.live.answer import LiveAnswer
from app.live.relay import Relay

pytestmark = pytest.mark.redis

FLUSH = 0.02


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    client = open_redis(redis_url, blocking_reads=True, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def relay_on(redis: Any, prefix: str, stall_seconds: float = 35.0) -> Relay:
    return Relay(redis, key_prefix=prefix, stall_seconds=stall_seconds, flush_seconds=FLUSH)


async def entries(redis: Any, key: str) -> list[dict[str, str]]:
    return [fields for _id, fields in await redis.xrange(key)]


async def eventually(condition: Any, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 (the state is in Redis)
            await asyncio.sleep(FLUSH)


async def test_answers_streaming_at_once_are_written_in_one_pipeline_a_pass(redis: Any) -> None:
    """Twenty answers, each a chunk at a time: a pipeline per pass, not one per answer."""
    prefix = f"test-{uuid.uuid4()}:"
    pipelines = 0
    pipeline = redis.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return pipeline(*args, **kwargs)

    redis.pipeline = counted
    relay = relay_on(redis, prefix)
    sessions = [uuid.uuid4() for _ in range(20)]
    answers = [LiveAnswer(f"question {n}") for n in range(20)]
    for session, answer in zip(sessions, answers, strict=True):
        relay.mirror(session, answer)
    for chunk in range(3):
        for answer in answers:
            answer.add(f"chunk {chunk}")
        await asyncio.sleep(2 * FLUSH)
    for answer in answers:
        answer.finish("done")
    key = f"{prefix}live:{sessions[-1]}"
    await eventually(lambda: _ended(redis, key))
    await relay.close()
    assert await entries(redis, key) == [
        {"q": "question 19"},
        {"f": "chunk 0", "end": "0"},
        {"f": "chunk 1", "end": "0"},
        {"f": "chunk 2", "end": "0"},
        {"f": "done", "end": "1"},
    ]
    assert pipelines <= 10  # about 5 passes; one per answer and pass would be 100


async def _ended(redis: Any, key: str) -> bool:
    newest = await redis.xrevrange(key, count=1)
    return bool(newest) and newest[0][1].get("end") == "1"


async def test_a_sessions_next_answer_replaces_its_last_only_once_that_one_is_written(
    redis: Any,
) -> None:
    prefix = f"test-{uuid.uuid4()}:"
    relay, session = relay_on(redis, prefix), uuid.uuid4()
    first, second = LiveAnswer("first?"), LiveAnswer("second?")
    relay.mirror(session, first)
    first.add("a")
    first.finish("done a")
    relay.mirror(session, second)  # before the writer's pass: it must not interleave
    second.add("b")
    second.finish("done b")
    key = f"{prefix}live:{session}"
    await eventually(lambda: _holds(redis, key, "second?"))
    await relay.close()
    assert await entries(redis, key) == [
        {"q": "second?"},
        {"f": "b", "end": "0"},
        {"f": "done b", "end": "1"},
    ]


async def _holds(redis: Any, key: str, question: str) -> bool:
    found = await entries(redis, key)
    return bool(found) and found[0] == {"q": question} and found[-1].get("end") == "1"


async def test_a_live_answer_silent_for_longer_than_its_ttl_keeps_its_stream(
    redis: Any,
) -> None:
    """A model that is slow to its first token: the stream's TTL (about the stall limit)
    is renewed while the answer is live, so it is still there to be followed."""
    prefix = f"test-{uuid.uuid4()}:"
    relay, session = relay_on(redis, prefix, stall_seconds=1.0), uuid.uuid4()
    answer = LiveAnswer("slow?")
    relay.mirror(session, answer)
    key = f"{prefix}live:{session}"
    await eventually(lambda: _exists(redis, key))
    await asyncio.sleep(2.5)  # over twice the TTL of 1 s
    assert await relay.find(session) is not None
    answer.finish("done")
    await eventually(lambda: _ended(redis, key))
    assert 0 < await redis.ttl(key) <= 60
    await relay.close()


async def _exists(redis: Any, key: str) -> bool:
    return bool(await redis.exists(key))
