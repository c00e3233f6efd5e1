"""`STREAM_CHUNK_INTERVAL` on the HTTP streams: REST SSE, the OpenAI edge, the AI SDK's.

As on the WebSocket (test_chat.py): the first text goes at once, the tokens that stream
in within the interval after it go out together, and the answer's end cuts the wait short.
Each stream is read as its clients read it, recording when each piece of text arrived.
"""

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from app.chat.prompts import instructions
from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app

TOKENS = [f"w{i} " for i in range(10)]
QUESTION = "Tell me about her."


async def rest_sse(port: int) -> AsyncIterator[str]:
    body = {"message": QUESTION, "stream": True}
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", f"http://127.0.0.1:{port}/api/chat", json=body) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: ") and (data := json.loads(line[6:]))["type"] == "chunk":
                yield data["data"]


async def openai_stream(port: int) -> AsyncIterator[str]:
    base = f"http://127.0.0.1:{port}/v1"
    async with AsyncOpenAI(base_url=base, api_key="any", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="resume-chat", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


async def ai_sdk_stream(port: int) -> AsyncIterator[str]:
    message = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": QUESTION}]}
    body = {"id": "Hx9cTqLwA2mVb7Rk", "messages": [message]}
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("POST", f"http://127.0.0.1:{port}/api/ui/chat", json=body) as response,
    ):
        async for line in response.aiter_lines():
            if (
                line.startswith("data: {")
                and (part := json.loads(line[6:]))["type"] == "text-delta"
            ):
                yield part["delta"]


async def timed(texts: AsyncIterator[str]) -> tuple[list[tuple[float, str]], float]:
    """Each text with the seconds since the start, and the seconds to the stream's end."""
    started = time.perf_counter()
    arrivals = [(time.perf_counter() - started, text) async for text in texts]
    return arrivals, time.perf_counter() - started


@pytest.mark.parametrize("read", [rest_sse, openai_stream, ai_sdk_stream])
async def test_tokens_within_the_interval_come_together_and_the_end_is_not_held(
    make_settings: SettingsFactory, fake_llm: FakeLLM, read: Callable[[int], AsyncIterator[str]]
) -> None:
    fake_llm.script(Reply(tokens=TOKENS, token_delay=0.01))  # 0.1 s for the whole answer
    async with running_app(make_settings(stream_chunk_interval=1.0)) as port:
        arrivals, ended = await timed(read(port))

    texts = [text for _, text in arrivals]
    assert "".join(texts) == "".join(TOKENS)
    assert texts[0] == TOKENS[0]  # the first token alone, not held for the interval
    assert len(texts) == 2, texts  # the other nine streamed within the interval: one piece
    assert ended - arrivals[0][0] < 0.8  # the answer's end cut the 1 s wait short


async def test_with_no_interval_the_tokens_come_as_they_stream(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    # 20 ms apart: paced by the default 50 ms, they would come in about four events.
    fake_llm.script(Reply(tokens=TOKENS, token_delay=0.02))
    async with running_app(make_settings(stream_chunk_interval=0)) as port:
        arrivals, _ = await timed(rest_sse(port))

    # One event per token as it streams (the leak guard may hold a short tail back to the
    # next token: an event of two then).
    assert "".join(text for _, text in arrivals) == "".join(TOKENS)
    assert len(arrivals) >= 8


async def test_text_the_leak_guard_holds_back_starts_no_wait(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    """An answer that begins with words of the prompt's rules: the guard holds them until
    the answer moves on, and only a chunk that went out starts the interval's wait."""

    def opening_with_the_rules(body: dict[str, Any]) -> Reply:
        rules = instructions(body["messages"][0]["content"])
        return Reply(tokens=[rules[:20], " zqxj ", *TOKENS], token_delay=0.02)

    fake_llm.responder = opening_with_the_rules
    async with running_app(make_settings(stream_chunk_interval=1.0)) as port:
        arrivals, _ = await timed(rest_sse(port))

    (first_at, first), *_ = arrivals
    assert len(first) == 20  # held back (a recital could begin so) until the next token
    assert first_at < 0.8  # then at once, not after an interval
    assert "".join(text for _, text in arrivals)[20:] == " zqxj " + "".join(TOKENS)
