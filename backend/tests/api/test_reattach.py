"""A visitor who reconnects mid-answer gets what they missed, then the rest live.

Chunks carry `seq` (1 for an answer's first); reconnecting with `?last_seq=N` resumes
after chunk N, on the same instance or, through Redis, on another one.
"""

import uuid
from typing import Any

import pytest

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import ChatClient, chat

QUESTION = {"type": "message", "data": "Tell me about her."}
TOKENS = [f"word{i} " for i in range(40)]


async def _first_chunks(client: ChatClient, count: int) -> list[dict[str, Any]]:
    await client.send(QUESTION)
    return [await client.receive() for _ in range(count)]


def assert_numbered_after(seqs: list[int], after: int) -> None:
    """Each chunk numbered above the one before it, and above `after` (a frame that joins
    chunks a socket fell behind on carries the last one's `seq`)."""
    assert all(earlier < later for earlier, later in zip([after, *seqs], seqs, strict=False))


async def test_reconnecting_with_last_seq_gets_the_rest_with_no_gap_or_repeat(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=TOKENS, token_delay=0.03))
    async with running_app(make_settings()) as port:
        async with chat(port) as first:
            seen = await _first_chunks(first, 5)
            session_id = first.session_id
        last_seq = seen[-1]["seq"]  # at least 5: a frame may join chunks the socket fell behind on
        async with chat(port, session_id, last_seq=last_seq) as again:
            rest = await again.collect()
            opened = again.session["data"]
    assert_numbered_after([frame["seq"] for frame in seen], after=0)
    assert_numbered_after(rest.seqs, after=last_seq)
    assert "".join(frame["data"] for frame in seen) + rest.text == "".join(TOKENS)
    assert rest.final["data"]["content"] == "".join(TOKENS)
    assert opened["answering"] is True
    assert [item["content"] for item in opened["history"]] == [QUESTION["data"]]


async def test_reconnecting_without_last_seq_replays_the_answer_from_its_start(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=TOKENS, token_delay=0.03))
    async with running_app(make_settings()) as port:
        async with chat(port) as first:
            seen = await _first_chunks(first, 3)
        async with chat(port, first.session_id) as again:
            replay = await again.collect()
        async with chat(port, first.session_id) as later:
            settled = later.session["data"]
    # The chunks streamed so far come as one frame, then the rest live.
    assert replay.chunks[0].startswith("".join(frame["data"] for frame in seen))
    assert replay.seqs[0] >= seen[-1]["seq"]
    assert_numbered_after(replay.seqs, after=0)
    assert replay.text == replay.final["data"]["content"] == "".join(TOKENS)
    assert settled["answering"] is False
    assert [m["content"] for m in settled["history"]] == [QUESTION["data"], "".join(TOKENS)]


async def test_a_second_socket_on_the_session_follows_and_can_cancel_but_not_ask(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=TOKENS, token_delay=0.05))
    async with running_app(make_settings()) as port, chat(port) as first:
        await _first_chunks(first, 2)
        async with chat(port, first.session_id, last_seq=2) as second:
            await second.send({"type": "message", "data": "Another question?"})
            refused = await second.receive()
            while refused["type"] == "chunk":
                refused = await second.receive()
            await second.send({"type": "cancel"})
            ended = await second.collect()
        original = await first.collect()
    assert refused["data"]["code"] == "busy"
    assert ended.final["data"]["finish_reason"] == "cancelled"
    assert original.final == ended.final


@pytest.mark.redis
async def test_an_answer_streaming_on_one_instance_is_followed_from_another(
    make_settings: SettingsFactory, fake_llm: FakeLLM, redis_url: str
) -> None:
    fake_llm.script(Reply(tokens=TOKENS, token_delay=0.03))
    settings = make_settings(redis_url=redis_url, redis_key_prefix=f"test-{uuid.uuid4()}")
    async with running_app(settings) as a, running_app(settings) as b:
        async with chat(a) as first:
            seen = await _first_chunks(first, 5)
        last_seq = seen[-1]["seq"]
        async with chat(b, first.session_id, last_seq=last_seq) as elsewhere:
            await elsewhere.send({"type": "message", "data": "Another question?"})
            frames = []
            while (frame := await elsewhere.receive())["type"] != "done":
                frames.append(frame)
            busy = [f for f in frames if f["type"] == "error"]
            done, opened = frame, elsewhere.session["data"]
            rest = [f for f in frames if f["type"] == "chunk"]
        async with chat(b, first.session_id) as resumed:
            after = await resumed.ask("And her languages?")
    assert opened["answering"] is True
    assert_numbered_after([f["seq"] for f in rest], after=last_seq)
    assert "".join(f["data"] for f in seen + rest) == done["data"]["content"] == "".join(TOKENS)
    assert [f["data"]["code"] for f in busy] == ["busy"]
    assert after.final["type"] == "done"
