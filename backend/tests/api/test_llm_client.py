"""`LLMClient.stream_chat` against the fake provider, over real HTTP on loopback."""

import asyncio
import email.utils
import gzip
import itertools
import json
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.config import OPENROUTER_BASE_URL, Settings
from app.core.errors import AppError, LLMTimeoutError, LLMUnavailableError
from app.llm.client import (
    Completion,
    LLMClient,
    TokenUsage,
    create_http_client,
    parse_retry_after,
)
from app.llm.sse import EventParser, ReadDeadline, StreamState
from devtools.fake_llm import FakeLLM, Reply, lorem_tokens

API_KEY = "sk-test-secret"
MODEL = "test/model"
MAX_RETRIES = 2
MESSAGES = [
    {"role": "system", "content": "You answer questions about Alex's resume."},
    {"role": "user", "content": "What does Alex do for a living?"},
]
# The fake provider counts four characters of the prompt as one token.
USAGE = TokenUsage(
    prompt_tokens=sum(len(m["content"]) for m in MESSAGES) // 4,
    completion_tokens=len(Reply().tokens),
)

ClientFactory = Callable[..., LLMClient]


@dataclass
class Outcome:
    deltas: list[str] = field(default_factory=list)  # the deltas of one read come as one
    completion: Completion | None = None
    error: AppError | None = None
    elapsed: float = 0.0

    @property
    def text(self) -> str:
        return "".join(self.deltas)


async def collect(client: LLMClient) -> Outcome:
    """Read a whole answer: its text deltas, then its Completion or the error that ended it."""
    outcome = Outcome()
    started = time.monotonic()
    try:
        async for item in client.stream_chat(MESSAGES):
            assert outcome.completion is None, "nothing may follow the Completion"
            if isinstance(item, Completion):
                outcome.completion = item
            else:
                outcome.deltas.append(item)
    except AppError as exc:
        outcome.error = exc
    outcome.elapsed = time.monotonic() - started
    return outcome


def make_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openrouter_api_key": API_KEY,
        "openrouter_base_url": base_url,
        "llm_model": MODEL,
        "llm_connect_timeout": 1.0,
        "llm_first_token_timeout": 2.0,
        "llm_chunk_timeout": 2.0,
        "llm_total_timeout": 10.0,
        "llm_max_retries": MAX_RETRIES,
        "llm_retry_max_wait": 0.3,
    }
    return Settings(_env_file=None, **(values | overrides))


def closed_port_url() -> str:
    """A loopback URL where nothing listens, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
async def make_client(fake_llm: FakeLLM) -> AsyncIterator[ClientFactory]:
    """LLMClients talking to the fake provider, each over its own real pooled httpx client."""
    async with AsyncExitStack() as stack:

        def make(**overrides: Any) -> LLMClient:
            settings = make_settings(fake_llm.base_url, **overrides)
            http = create_http_client(settings)
            stack.push_async_callback(http.aclose)
            return LLMClient(http, settings)

        yield make


@pytest.fixture
def client(make_client: ClientFactory) -> LLMClient:
    return make_client()


@pytest.fixture
def logs(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """Capture everything the client and httpx log, even after setup_logging ran elsewhere."""
    monkeypatch.setattr(logging.getLogger("app"), "propagate", True)
    for name in ("app", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_key_not_leaked(logs: pytest.LogCaptureFixture, error: BaseException | None) -> None:
    assert logs.records, "nothing was captured, so nothing was checked"
    assert API_KEY not in logs.text
    if error is not None:
        assert API_KEY not in "".join(traceback.format_exception(error))  # the whole chain


@pytest.mark.parametrize(
    ("reply", "completion"),
    [
        pytest.param(Reply(), Completion("stop", USAGE, MODEL), id="with-comments"),
        pytest.param(Reply(multiline=True), Completion("stop", USAGE, MODEL), id="multiline"),
        pytest.param(Reply(usage=False), Completion("stop", None, MODEL), id="no-usage"),
        pytest.param(
            Reply(finish_reason="length"), Completion("length", USAGE, MODEL), id="length"
        ),
    ],
)
async def test_stream_yields_deltas_in_order_then_one_completion(
    fake_llm: FakeLLM, client: LLMClient, reply: Reply, completion: Completion
) -> None:
    fake_llm.script(reply)

    outcome = await collect(client)

    assert outcome.error is None
    assert outcome.text == "Hello, world."
    assert outcome.completion == completion


async def test_request_carries_payload_and_headers_from_settings(
    fake_llm: FakeLLM, make_client: ClientFactory, logs: pytest.LogCaptureFixture
) -> None:
    client = make_client(
        llm_temperature=0.7,
        llm_max_tokens=123,
        app_url="https://alex.example/resume",
        app_title="Alex Resume Chat",
    )

    await collect(client)

    [request] = fake_llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == MODEL
    assert request.body["messages"] == MESSAGES
    assert request.body["stream"] is True
    assert request.body["temperature"] == 0.7
    assert request.body["max_tokens"] == 123
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["http-referer"] == "https://alex.example/resume"
    assert request.headers["x-title"] == "Alex Resume Chat"
    assert_key_not_leaked(logs, None)


async def test_keyless_local_provider_gets_no_authorization_header(
    fake_llm: FakeLLM, make_client: ClientFactory
) -> None:
    client = make_client(openrouter_api_key=None)

    outcome = await collect(client)

    assert outcome.text == "".join(Reply().tokens)
    [request] = fake_llm.requests
    assert "authorization" not in request.headers


@pytest.mark.parametrize("api_key", [None, "   "])
async def test_unconfigured_openrouter_fails_before_any_request(api_key: str | None) -> None:
    settings = make_settings(OPENROUTER_BASE_URL, openrouter_api_key=api_key)
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)

    async with create_http_client(settings) as http:
        http.event_hooks = {"request": [record]}
        outcome = await collect(LLMClient(http, settings))

    assert isinstance(outcome.error, LLMUnavailableError)
    assert "OPENROUTER_API_KEY" in outcome.error.message
    assert sent == []


async def test_429_is_retried_after_its_retry_after(fake_llm: FakeLLM, client: LLMClient) -> None:
    fake_llm.script(Reply(status=429, retry_after=0.2))

    outcome = await collect(client)

    assert outcome.error is None
    assert outcome.text == "".join(Reply().tokens)
    assert len(fake_llm.requests) == 2
    assert outcome.elapsed >= 0.19


@pytest.mark.parametrize(
    ("status", "says"),
    [(429, "too many requests"), (500, "500"), (502, "502"), (503, "503")],
)
async def test_retryable_status_gives_up_after_max_retries(
    fake_llm: FakeLLM, client: LLMClient, logs: pytest.LogCaptureFixture, status: int, says: str
) -> None:
    # One attempt more than allowed would reach the fake's default, successful reply.
    fake_llm.script(*[Reply(status=status)] * (MAX_RETRIES + 1))

    outcome = await collect(client)

    assert isinstance(outcome.error, LLMUnavailableError)
    assert says in outcome.error.message
    assert outcome.text == ""
    assert len(fake_llm.requests) == MAX_RETRIES + 1
    assert_key_not_leaked(logs, outcome.error)


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        pytest.param(Reply(status=400), "400", id="400"),
        pytest.param(Reply(status=401), "credentials", id="401"),
        pytest.param(Reply(status=429, retry_after=5), "too many requests", id="429-wait-5s"),
    ],
)
async def test_status_not_worth_retrying_fails_at_once(
    fake_llm: FakeLLM, client: LLMClient, logs: pytest.LogCaptureFixture, reply: Reply, says: str
) -> None:
    fake_llm.script(reply)

    outcome = await collect(client)

    assert isinstance(outcome.error, LLMUnavailableError)
    assert says in outcome.error.message
    assert len(fake_llm.requests) == 1
    assert outcome.elapsed < 1.0
    assert_key_not_leaked(logs, outcome.error)


async def test_refused_connection_is_retried_then_unavailable(
    make_client: ClientFactory, logs: pytest.LogCaptureFixture
) -> None:
    client = make_client(openrouter_base_url=closed_port_url())

    outcome = await collect(client)

    assert isinstance(outcome.error, LLMUnavailableError)
    assert "cannot be reached" in outcome.error.message
    retries = [r for r in logs.records if r.name.startswith("app") and "attempt" in r.message]
    assert len(retries) == MAX_RETRIES
    assert_key_not_leaked(logs, outcome.error)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(hang=True), id="hang"),
        pytest.param(Reply(first_token_delay=1.5), id="only-a-comment-in-time"),
    ],
)
async def test_no_first_token_in_time_times_out_and_closes_stream(
    fake_llm: FakeLLM, make_client: ClientFactory, logs: pytest.LogCaptureFixture, reply: Reply
) -> None:
    fake_llm.script(reply)

    outcome = await collect(make_client(llm_first_token_timeout=0.5))

    assert isinstance(outcome.error, LLMTimeoutError)
    assert outcome.text == ""
    assert outcome.elapsed < 1.0
    await fake_llm.wait_idle()
    assert fake_llm.cancelled_streams == 1
    assert_key_not_leaked(logs, outcome.error)


async def test_first_token_may_take_longer_than_the_chunk_timeout(
    fake_llm: FakeLLM, make_client: ClientFactory
) -> None:
    fake_llm.script(Reply(first_token_delay=0.6))

    outcome = await collect(make_client(llm_first_token_timeout=1.5, llm_chunk_timeout=0.3))

    assert outcome.error is None
    assert outcome.text == "".join(Reply().tokens)


async def test_gap_between_chunks_times_out_after_first_delta(
    fake_llm: FakeLLM, make_client: ClientFactory
) -> None:
    fake_llm.script(Reply(token_delay=1.0))

    outcome = await collect(make_client(llm_chunk_timeout=0.3))

    assert isinstance(outcome.error, LLMTimeoutError)
    assert outcome.text == "Hello"
    assert outcome.elapsed < 0.9
    await fake_llm.wait_idle()
    assert fake_llm.cancelled_streams == 1


async def test_whole_answer_taking_too_long_times_out(
    fake_llm: FakeLLM, make_client: ClientFactory
) -> None:
    tokens = lorem_tokens(40)
    fake_llm.script(Reply(tokens=tokens, token_delay=0.05))

    outcome = await collect(make_client(llm_total_timeout=0.6))

    assert isinstance(outcome.error, LLMTimeoutError)
    assert 0 < len(outcome.text) < len("".join(tokens))
    assert "".join(tokens).startswith(outcome.text)
    assert 0.5 < outcome.elapsed < 1.2
    await fake_llm.wait_idle()
    assert fake_llm.cancelled_streams == 1


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        pytest.param(Reply(drop_after=2), "Hello, ", id="connection-dropped"),
        pytest.param(Reply(error_after=1), "Hello", id="error-event"),
        pytest.param(Reply(error_after=0), "", id="error-event-first"),
        pytest.param(Reply(malformed_after=1), "Hello", id="malformed-event"),
    ],
)
async def test_broken_stream_is_unavailable_and_not_retried(
    fake_llm: FakeLLM,
    client: LLMClient,
    logs: pytest.LogCaptureFixture,
    reply: Reply,
    text: str,
) -> None:
    # A retry would reach the fake's default, successful reply and repeat the text.
    fake_llm.script(reply)

    outcome = await collect(client)

    assert isinstance(outcome.error, LLMUnavailableError)
    assert outcome.text == text
    assert outcome.completion is None
    assert len(fake_llm.requests) == 1
    assert_key_not_leaked(logs, outcome.error)


async def test_closing_the_consumer_early_closes_the_upstream_stream(
    fake_llm: FakeLLM, client: LLMClient
) -> None:
    tokens = lorem_tokens(100)
    fake_llm.script(Reply(tokens=tokens, token_delay=0.05))

    async with aclosing(client.stream_chat(MESSAGES)) as stream:
        async for item in stream:
            first = item
            break

    assert first == tokens[0]
    await fake_llm.wait_idle()
    assert fake_llm.cancelled_streams == 1


def http_date(delta: timedelta) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + delta, usegmt=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0.2", 0.2),
        ("120", 120.0),
        ("-3", 0.0),
        (http_date(timedelta(hours=-1)), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
    # Fixed ids: the date differs by the second, and xdist's workers must collect alike.
    ids=["fraction", "seconds", "negative", "past-date", "word", "empty", "absent"],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_reads_a_future_http_date() -> None:
    seconds = parse_retry_after(http_date(timedelta(seconds=30)))

    # HTTP dates have whole seconds, so up to one second is lost.
    assert seconds is not None
    assert 28.5 < seconds <= 30


async def test_answers_reuse_one_connection_to_the_provider(
    client: LLMClient, fake_llm: FakeLLM
) -> None:
    for _ in range(3):
        outcome = await collect(client)
        assert outcome.completion == Completion("stop", USAGE, MODEL)

    peers = {request.peer for request in fake_llm.requests}
    assert len(fake_llm.requests) == 3
    assert len(peers) == 1, peers


# Lines of SSE text, including the awkward ones: fields without a space or a value,
# comments, ids (kept across events), retry values, non-ASCII text, blank lines (which
# end events), each ended by any of the three line ends or not at all.
SSE_LINES = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "", "", "data: x", "data:", "data", 'data: {"a": 1}', "data: [DONE]",
                "data: é€😀", "data:  two spaces", "event: x", "event:", "id: 7", "id:",
                "retry: 30", "retry: soon", ": keep-alive", "ignored: y",
            ]
        ),
        st.sampled_from(["\n", "\r", "\r\n", ""]),
    ),
    max_size=30,
)  # fmt: skip


def reference_events(text: str) -> list[str]:
    """The data of each event, as httpx-sse reads `text`."""
    lines, decoder = SSELineDecoder(), SSEDecoder()
    events = [decoder.decode(line) for line in [*lines.decode(text), *lines.flush()]]
    return [event.data for event in events if event is not None]


def parsed_events(body: bytes, bounds: list[int]) -> list[str]:
    parser = EventParser()
    events: list[bytes] = []
    for start, end in itertools.pairwise(bounds):
        events += parser.feed(body[start:end])
    return [event.decode() for event in events + parser.end()]


@settings(max_examples=500, deadline=None)
@given(lines=SSE_LINES, cuts=st.lists(st.integers(0, 400)))
def test_event_parser_reads_events_as_httpx_sse_does(
    lines: list[tuple[str, str]], cuts: list[int]
) -> None:
    text = "".join(line + end for line, end in lines)
    body = text.encode()
    expected = reference_events(text)
    some_cuts = sorted({0, len(body), *(cut for cut in cuts if cut < len(body))})

    assert parsed_events(body, some_cuts) == expected
    assert parsed_events(body, list(range(len(body) + 1))) == expected  # byte by byte


# Chunks of the usual shape and near misses: wrong types, nulls, empty strings, errors.
ODD: st.SearchStrategy[object] = st.sampled_from([None, "", "x", 3, 2.5, True, [], {}, "é"])
TOOL_CALL = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "index": st.one_of(st.integers(0, 2), ODD),
            "id": st.one_of(st.sampled_from(["call_1", "call_2"]), ODD),
            "type": st.just("function"),
            "function": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={"name": st.one_of(st.sampled_from(["f", "g"]), ODD),
                              "arguments": st.one_of(st.text(max_size=4), ODD)},
                ),
                ODD,
            ),
        },
    ),
    ODD,
)  # fmt: skip
CHUNKS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.sampled_from(["m1", "m2", ""]), ODD),
        "choices": st.one_of(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "delta": st.one_of(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "content": st.one_of(st.text(max_size=5), ODD),
                                        "tool_calls": st.one_of(st.lists(TOOL_CALL, max_size=2),
                                                                ODD),
                                    },
                                ),
                                ODD,
                            ),
                            "finish_reason": st.one_of(st.sampled_from(["stop", "length"]), ODD),
                        },
                    ),
                    ODD,
                ),
                max_size=3,
            ),
            ODD,
        ),
        "usage": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={"prompt_tokens": st.one_of(st.integers(0, 9), ODD),
                          "completion_tokens": st.one_of(st.integers(0, 9), ODD)},
            ),
            ODD,
        ),
        "error": st.one_of(st.just({"message": "overloaded"}), ODD),
    },
)  # fmt: skip


def taken(read: Callable[[bytes], list[str]], state: StreamState, data: bytes) -> object:
    try:
        return read(data), state
    except LLMUnavailableError as error:
        return error.message


@settings(max_examples=500, deadline=None)
@given(chunks=st.lists(CHUNKS, min_size=1, max_size=3))
def test_usual_chunks_are_read_as_the_pydantic_models_read_them(
    chunks: list[dict[str, Any]],
) -> None:
    fast, checked = StreamState(), StreamState()
    for chunk in chunks:
        data = json.dumps(chunk).encode()
        assert taken(fast.add, fast, data) == taken(checked._add_validated, checked, data)


async def arriving(*delays: float) -> AsyncIterator[bytes]:
    """Bytes after each delay (0: at once, without waiting)."""
    for delay in delays:
        if delay:
            await asyncio.sleep(delay)
        yield b"x"


async def test_read_deadline_times_out_a_read_that_waits_past_it() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = ReadDeadline(started + 0.1)
    source = arriving(0.01, 1.0)

    assert await deadline.read(source) == b"x"
    with pytest.raises(TimeoutError):
        await deadline.read(source)
    deadline.close()

    assert 0.1 <= loop.time() - started < 0.5


async def test_read_deadline_follows_moves_later_and_earlier() -> None:
    loop = asyncio.get_running_loop()
    deadline = ReadDeadline(loop.time() + 0.05)
    deadline.move(loop.time() + 0.3)
    assert await deadline.read(arriving(0.15)) == b"x"  # later: the first timer re-arms

    deadline.move(loop.time() + 10)
    deadline.move(loop.time() + 0.05)  # earlier than the armed timer
    started = loop.time()
    with pytest.raises(TimeoutError):
        await deadline.read(arriving(1.0))
    deadline.close()
    assert loop.time() - started < 0.5


async def test_read_deadline_counts_time_spent_between_reads() -> None:
    loop = asyncio.get_running_loop()
    deadline = ReadDeadline(loop.time() + 0.05)
    await asyncio.sleep(0.1)  # the consumer was busy; the timer went off meanwhile

    assert await deadline.read(arriving(0)) == b"x"  # bytes already there are still read
    with pytest.raises(TimeoutError):
        await deadline.read(arriving(1.0))
    deadline.move(loop.time() + 0.05)  # a spent timer is armed again
    with pytest.raises(TimeoutError):
        await deadline.read(arriving(1.0))
    deadline.close()

    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # nothing left over for the turn to mistake for shutdown


async def test_read_deadline_leaves_an_outside_cancellation_alone() -> None:
    loop = asyncio.get_running_loop()
    deadline = ReadDeadline(loop.time() + 5)
    reading = asyncio.create_task(deadline.read(arriving(1.0)))
    await asyncio.sleep(0.05)
    reading.cancel()

    with pytest.raises(asyncio.CancelledError):
        await reading
    deadline.close()


async def test_a_compressed_stream_is_decoded() -> None:
    """A provider (or a proxy before it) may gzip the stream: the deltas are the same."""
    events = [
        {"model": MODEL, "choices": [{"delta": {"content": text}, "finish_reason": None}]}
        for text in ("Hello", ", ", "world", ".")
    ]
    events.append({"model": MODEL, "choices": [{"delta": {}, "finish_reason": "stop"}]})
    sse = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    body = gzip.compress(sse.encode())

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        await reader.readexactly(int(head.split("content-length:")[1].split()[0]))
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(respond, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = make_settings(f"http://127.0.0.1:{port}/v1")
    http = create_http_client(settings)
    try:
        outcome = await collect(LLMClient(http, settings))
    finally:
        await http.aclose()
        server.close()

    assert outcome.error is None
    assert outcome.text == "Hello, world."
    assert outcome.completion == Completion("stop", None, MODEL)
