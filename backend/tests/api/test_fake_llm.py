import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from devtools.fake_llm import Call, FakeLLM, Reply, start_fake_llm

MESSAGES = [{"role": "user", "content": "What does Alex do for a living?"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with start_fake_llm() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def chat_body(stream: bool = True) -> dict[str, Any]:
    return {"model": "test/model", "messages": MESSAGES, "stream": stream}


async def read_events(response: httpx.Response, lines: list[str]) -> list[str]:
    """Collect raw lines into `lines` and return the data of each SSE event."""
    events: list[str] = []
    data: list[str] = []
    async for line in response.aiter_lines():
        lines.append(line)
        if line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and data:
            events.append("\n".join(data))
            data = []
    return events


async def stream_chat(client: httpx.AsyncClient, fake: FakeLLM) -> tuple[list[str], list[str]]:
    lines: list[str] = []
    url = f"{fake.base_url}/chat/completions"
    async with client.stream("POST", url, json=chat_body()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return await read_events(response, lines), lines


def contents(events: list[str]) -> list[str]:
    chunks = [json.loads(event) for event in events if event != "[DONE]"]
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    return [delta["content"] for delta in deltas if "content" in delta]


async def test_default_reply_streams_tokens_usage_and_done(
    fake: FakeLLM, client: httpx.AsyncClient
) -> None:
    events, lines = await stream_chat(client, fake)

    assert lines[0] == ": OPENROUTER PROCESSING"
    assert contents(events) == Reply().tokens
    finish, usage = json.loads(events[-3]), json.loads(events[-2])
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    prompt_tokens = len(MESSAGES[0]["content"]) // 4
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": 4,
        "total_tokens": prompt_tokens + 4,
    }
    assert events[-1] == "[DONE]"


async def test_status_reply_sends_error_body_and_retry_after(
    fake: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake.script(Reply(status=429, retry_after=2))

    response = await client.post(f"{fake.base_url}/chat/completions", json=chat_body())

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == 429


async def test_drop_after_breaks_the_connection_after_n_tokens(
    fake: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake.script(Reply(drop_after=2))
    url = f"{fake.base_url}/chat/completions"
    lines: list[str] = []

    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", url, json=chat_body()) as response:
            await read_events(response, lines)

    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert contents(data) == ["Hello", ", "]
    assert fake.cancelled_streams == 0


async def test_error_after_sends_the_error_event_and_ends(
    fake: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake.script(Reply(error_after=1))

    events, _ = await stream_chat(client, fake)

    assert len(events) == 2
    assert json.loads(events[1]) == {"error": {"message": "Upstream overloaded", "code": 502}}


async def test_malformed_and_multiline_events(fake: FakeLLM, client: httpx.AsyncClient) -> None:
    fake.script(Reply(malformed_after=1, multiline=True))

    events, lines = await stream_chat(client, fake)

    assert lines[2].startswith("data: {")
    assert lines[3].startswith('data: "object"')
    assert "{not json" in events
    assert contents([event for event in events if event != "{not json"]) == Reply().tokens


async def test_comments_usage_and_finish_reason_switches(
    fake: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake.script(Reply(comments=False, usage=False, finish_reason="length"))

    events, lines = await stream_chat(client, fake)

    assert not [line for line in lines if line.startswith(":")]
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in json.loads(event) for event in events[:-1])


async def test_delays_are_honoured(fake: FakeLLM, client: httpx.AsyncClient) -> None:
    fake.script(Reply(first_token_delay=0.15, token_delay=0.05))
    started = time.perf_counter()

    await stream_chat(client, fake)

    assert time.perf_counter() - started >= 0.29


async def test_hang_is_cancelled_when_the_client_goes_away(fake: FakeLLM) -> None:
    fake.script(Reply(hang=True))
    url = f"{fake.base_url}/chat/completions"

    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.2)) as client,
        client.stream("POST", url, json=chat_body()) as response,
    ):
        lines = response.aiter_lines()
        assert [await anext(lines), await anext(lines)] == [": OPENROUTER PROCESSING", ""]
        assert fake.active_streams == 1
        with pytest.raises(httpx.ReadTimeout):
            await anext(lines)
    await fake.wait_idle()

    assert (fake.active_streams, fake.cancelled_streams) == (0, 1)


async def test_requests_are_recorded_with_headers_and_body(
    fake: FakeLLM, client: httpx.AsyncClient
) -> None:
    url = fake.base_url.removesuffix("/v1") + "/api/v1/chat/completions"

    await client.post(url, json=chat_body(stream=False), headers={"Authorization": "Bearer k"})

    [recorded] = fake.requests
    assert recorded.path == "/api/v1/chat/completions"
    assert recorded.headers["authorization"] == "Bearer k"
    assert recorded.body == chat_body(stream=False)


async def test_scripted_replies_are_served_in_order_then_default(
    fake: FakeLLM, client: httpx.AsyncClient
) -> None:
    fake.script(Reply(tokens=["first"]), Reply(status=503))
    url = f"{fake.base_url}/chat/completions"

    responses = [await client.post(url, json=chat_body(stream=False)) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 503, 200]
    assert responses[0].json()["choices"][0]["message"]["content"] == "first"
    assert responses[2].json()["choices"][0]["message"]["content"] == "Hello, world."


async def test_tool_calls_stream_in_pieces_as_the_openai_client_reads_them(fake: FakeLLM) -> None:
    """The real `openai` package puts the streamed call together, then sends the result."""
    arguments = {"name": "Jane Doe", "email": "jane@acme.example"}
    fake.script(
        Reply(tokens=[], tool_calls=[Call("record_contact", arguments, id="call_1", pieces=4)]),
        Reply(tokens=["Thanks, ", "Jane."]),
    )
    tools: list[Any] = [
        {"type": "function", "function": {"name": "record_contact", "parameters": {}}}
    ]
    client = AsyncOpenAI(base_url=fake.base_url, api_key="sk-test")
    messages: list[Any] = [{"role": "user", "content": "Reach me at jane@acme.example"}]
    async with client.chat.completions.stream(
        model="test/model", messages=messages, tools=tools
    ) as stream:
        deltas = [
            call.function.arguments
            async for chunk in stream
            if chunk.type == "chunk" and chunk.chunk.choices
            for call in chunk.chunk.choices[0].delta.tool_calls or []
            if call.function and call.function.arguments
        ]
        final = await stream.get_final_completion()
    [choice] = final.choices
    [call] = choice.message.tool_calls or []
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"ok": true}'},
    ]
    follow_up = await client.chat.completions.create(
        model="test/model", messages=messages, tools=tools
    )
    await client.close()

    assert len(deltas) == 4  # the arguments came in four pieces
    assert choice.finish_reason == "tool_calls"
    assert (call.id, call.function.name) == ("call_1", "record_contact")
    assert json.loads(call.function.arguments) == arguments
    assert follow_up.choices[0].message.content == "Thanks, Jane."
    sent = fake.requests[-1].body["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_1"
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true}'}
