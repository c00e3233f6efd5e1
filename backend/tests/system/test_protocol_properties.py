"""Property-based protocol tests: any sequence of frames keeps the socket and the history true.

Hypothesis generates sequences of questions (valid, blank, with control characters, too
long), bad frames, pings, cancels, pauses, provider failures and reconnects, played over
a real socket to a real app (one per test, in a background thread). Invariants: no frame
closes the socket; every question and bad frame gets exactly one `done` or `error`, a
question sent while an answer streams being refused `busy` or answered; an answer's
chunks add up to its `done`; and the database holds each accepted question once with
what the visitor was sent as its answer (cancelled and failed ones as far as they got).
"""

import asyncio
import json
import unicodedata
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.llm.tokens import TokenCounter
from app.main import create_app
from devtools.fake_llm import FakeLLM, Reply, lorem_tokens, start_fake_llm
from tests.support.app import serve
from tests.support.protocol_driver import (
    Action,
    Ask,
    Driver,
    Pause,
    Provider,
    Reconnect,
    Row,
    Send,
    Settle,
    SocketLog,
    background,
    is_turn_end,
)

MAX_CHARS, MAX_TOKENS, MAX_FRAME = 300, 500, 16_384
UNLIMITED = "100000/minute"
COUNTER = TokenCounter()
REPLIES = {
    "slow": Reply(tokens=lorem_tokens(8), first_token_delay=0.02, token_delay=0.02),
    "quick": Reply(tokens=lorem_tokens(3)),
    "error mid-stream": Reply(tokens=lorem_tokens(6), token_delay=0.01, error_after=2),
    "dropped mid-answer": Reply(tokens=lorem_tokens(6), token_delay=0.01, drop_after=3),
    "malformed event": Reply(tokens=lorem_tokens(4), malformed_after=1),
    "5xx, so the resume answers": Reply(status=500),
}


@dataclass(frozen=True)
class Served:
    port: int
    fake: FakeLLM
    database_url: str


def app_settings(database_url: str, provider_url: str) -> Settings:
    return Settings(
        _env_file=None,
        openrouter_api_key="sk-test-secret-key",
        openrouter_base_url=provider_url,
        database_url=database_url,
        llm_first_token_timeout=2.0,
        llm_chunk_timeout=2.0,
        llm_max_retries=1,
        llm_retry_max_wait=0.05,
        max_message_chars=MAX_CHARS,
        max_message_tokens=MAX_TOKENS,
        ws_max_frame_bytes=MAX_FRAME,
        max_turns_per_session=1000,
        max_connections_per_ip=1000,
        budget_tokens_per_session=0,
        budget_tokens_per_ip_per_day=0,
        budget_tokens_per_day=0,
        rate_limit_questions_per_ip=UNLIMITED,
        rate_limit_questions_per_session=UNLIMITED,
        rate_limit_new_sessions_per_ip=UNLIMITED,
        log_level="WARNING",
    )


@pytest.fixture
def served(database_url: str) -> Iterator[Served]:
    async def start(stack: AsyncExitStack) -> Served:
        fake = await stack.enter_async_context(start_fake_llm())
        app = create_app(app_settings(database_url, fake.base_url))
        return Served(await stack.enter_async_context(serve(app)), fake, database_url)

    with background(start) as running:
        yield running


def classify(frame: str) -> tuple[str | None, str | None]:
    """What README promises for a question frame: stored as what, or refused with which code."""
    if len(frame.encode()) > MAX_FRAME:
        return None, "message_too_long"
    question: str = json.loads(frame)["data"].strip()
    if not question or any(
        unicodedata.category(char) == "Cc" and char not in "\t\n\r" for char in question
    ):
        return None, "invalid_message"
    if len(question) > MAX_CHARS or COUNTER.count(question) > MAX_TOKENS:
        return None, "message_too_long"
    return question, None


# Strategies


SPACE = st.text(st.sampled_from(" \t\n\r\u00a0\u2003\x85"), max_size=3)
WORDS = st.text(
    st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\t\n"), max_size=40
)
CONTROL = st.characters(categories=["Cc"]).filter(lambda char: char not in "\t\n\r")
QUESTIONS = st.one_of(
    st.tuples(SPACE, WORDS.filter(str.strip), SPACE).map("".join),
    st.tuples(SPACE, WORDS.filter(str.strip), SPACE).map("".join),
    SPACE,
    st.tuples(WORDS, CONTROL, WORDS).map("".join),
    st.integers(MAX_CHARS - 5, MAX_CHARS + 20).map(lambda n: "a" * n),
    st.integers(100, 290).map(lambda n: "\U0001d518" * n),  # several tokens per character
)
SHAPES = [{"type": "message", "data": "Hi"}, {"type": "ping"}, {"type": "cancel", "data": None}]
WRONG = [
    '{"type": "message"}',
    '{"type": "message", "data": 3}',
    '{"type": "message", "data": null}',
    '{"type": "message", "data": ["Hi"]}',
    '{"type": "ping", "data": "x"}',
    '{"type": "cancel", "data": 0}',
    '{"data": "What does she do?"}',
    '{"type": "message", "data": "Hi \\ud800"}',  # a lone surrogate: not valid JSON text
]
INVALID_TEXT = st.one_of(
    st.text(max_size=30).filter(lambda text: '"type"' not in text),
    st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=3)).map(json.dumps),
    st.text(max_size=12)
    .filter(lambda kind: kind not in ("message", "ping", "cancel"))
    .map(lambda kind: json.dumps({"type": kind, "data": "Hi"})),
    st.builds(
        lambda shape, key: json.dumps({**shape, key: 1}),
        st.sampled_from(SHAPES),
        st.text(max_size=8).filter(lambda key: key not in ("type", "data")),
    ),
    st.sampled_from(WRONG),
)
OVERSIZED = st.integers(MAX_FRAME + 1, MAX_FRAME + 500).map(
    lambda n: json.dumps({"type": "message", "data": "x" * n})
)
BAD = st.one_of(
    INVALID_TEXT.map(lambda frame: Send(frame, "bad", "invalid_message")),
    st.binary(max_size=40).map(lambda frame: Send(frame, "bad", "invalid_message")),
    OVERSIZED.map(lambda frame: Send(frame, "bad", "message_too_long")),
)
PING = st.sampled_from(['{"type": "ping"}', '{"type": "ping", "data": null}'])
CANCEL = st.sampled_from(['{"type": "cancel"}', '{"type": "cancel", "data": null}'])
# Drawn by weight: one_of would favour its first branches.
WEIGHTED: list[tuple[int, st.SearchStrategy[Action]]] = [
    (6, QUESTIONS.map(Ask)),
    (3, BAD),
    (1, PING.map(lambda frame: Send(frame, "ping"))),
    (2, CANCEL.map(lambda frame: Send(frame, "cancel"))),
    (2, st.sampled_from([0.0, 0.01, 0.05, 0.15]).map(Pause)),
    (1, st.just(Settle())),
    (2, st.sampled_from(list(REPLIES.values())).map(Provider)),
    (2, st.just(Reconnect())),
]
ACTIONS: st.SearchStrategy[Action] = st.sampled_from(
    [strategy for weight, strategy in WEIGHTED for _ in range(weight)]
).flatmap(lambda strategy: strategy)


# Playing a sequence, then what must hold


@dataclass
class Outcome:
    logs: list[SocketLog]
    rows: dict[str, list[Row]]  # each session's stored messages, from the database
    rest: dict[str, Any]  # each session's GET /api/sessions/{id}/messages: pairs, or status


async def play(served: Served, actions: list[Action]) -> Outcome:
    engine = create_async_engine(served.database_url)
    driver = Driver(served.port, served.fake, engine, classify)
    try:
        await driver.play(actions)
        sessions = {log.session_id for log in driver.logs}
        rows = {session: await driver.rows(session) for session in sessions}
    finally:
        await driver.abort()
        await engine.dispose()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as http:
        rest = {session: await history(http, session) for session in sessions}
    return Outcome(driver.logs, rows, rest)


async def history(http: httpx.AsyncClient, session: str) -> Any:
    response = await http.get(f"/api/sessions/{session}/messages")
    if response.status_code != 200:
        return response.status_code
    return [(item["role"], item["content"]) for item in response.json()["messages"]]


def split_turns(frames: list[dict[str, Any]]) -> list[tuple[list[str], dict[str, Any] | None]]:
    """Each answer's chunks and the `done` or `error` that ended it (None: still going)."""
    turns: list[tuple[list[str], dict[str, Any] | None]] = []
    chunks: list[str] = []
    for frame in frames:
        if frame["type"] == "chunk":
            chunks.append(frame["data"])
        elif is_turn_end(frame):
            turns.append((chunks, frame))
            chunks = []
    return turns + ([(chunks, None)] if chunks else [])


def check_session(rows: list[Row], logs: list[SocketLog]) -> dict[str, Row]:
    """Stored: question, answer, question, answer...; each question one that was sent, once."""
    assert [row.role for row in rows] == ["user", "assistant"] * (len(rows) // 2), rows
    pairs = zip(rows[::2], rows[1::2], strict=True)
    answers = {question.content: answer for question, answer in pairs}
    assert len(answers) == len(rows) // 2, f"a question stored twice: {rows}"
    sent = {sent.question for log in logs for sent in log.sent}
    assert set(answers) <= sent, f"stored but never asked: {set(answers) - sent}"
    for answer in answers.values():
        assert answer.finish_reason is not None
        assert (answer.finish_reason == "error") == (answer.error_code is not None), answer
    return answers


def check_replies(log: SocketLog, answers: dict[str, Row]) -> None:
    """Each frame's own reply, in order: refusals with their codes, pongs; accepted: none."""
    expected = [
        sent.codes
        for sent in log.sent
        if sent.kind == "bad" or (sent.kind == "question" and sent.question not in answers)
    ]
    got = [
        frame["data"]["code"]
        for frame in log.frames
        if frame["type"] == "error" and not is_turn_end(frame)
    ]
    assert len(got) == len(expected), f"refusals {got}, expected one of each of {expected}"
    for code, codes in zip(got, expected, strict=True):
        assert code in codes, f"refused with {code}, expected one of {sorted(codes)}"
    assert log.count("pong") == sum(1 for sent in log.sent if sent.kind == "ping")


def check_answers(log: SocketLog, answers: dict[str, Row]) -> None:
    """The socket's answers in order: chunks add up to `done`, and that is what was stored."""
    accepted = [sent.question for sent in log.sent if sent.question in answers]
    turns = split_turns(log.frames)
    ended = sum(1 for _, end in turns if end is not None)
    assert ended == len(accepted) - log.abandoned, f"{ended} answers for {accepted}: {turns}"
    assert len(turns) - ended <= log.abandoned, f"an answer never ended: {turns[-1]}"
    cancels = any(sent.kind == "cancel" for sent in log.sent)
    # An abandoned socket's last answer may not have begun: one question more than turns.
    for (chunks, end), question in zip(turns, accepted, strict=False):
        stored, text = answers[str(question)], "".join(chunks)
        if end is None:
            assert stored.content.startswith(text), (stored, text)
        elif end["type"] == "done":
            assert end["data"]["content"] == text == stored.content
            assert end["data"]["finish_reason"] == stored.finish_reason
            assert cancels or stored.finish_reason != "cancelled"
        else:
            assert (stored.content, stored.error_code) == (text, end["data"]["code"])


def check(outcome: Outcome) -> None:
    for session, rows in outcome.rows.items():
        logs = [log for log in outcome.logs if log.session_id == session]
        answers = check_session(rows, logs)
        visible = [(row.role, row.content) for row in rows if row.content]
        assert outcome.rest[session] == (visible if rows else 404)
        for log in logs:
            assert not log.closed_by_server, f"the server closed the socket: {log.frames[-3:]}"
            if log.watched:
                check_replies(log, answers)
                check_answers(log, answers)
    final = outcome.logs[-1]
    stored = outcome.rows[final.session_id]
    assert final.session["resumed"] == bool(stored)
    assert [(item["role"], item["content"]) for item in final.session["history"]] == [
        (row.role, row.content) for row in stored if row.content
    ]


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(ACTIONS, min_size=4, max_size=20))
def test_any_sequence_of_frames_keeps_the_socket_open_and_the_history_true(
    served: Served, actions: list[Action]
) -> None:
    served.fake.default = REPLIES["slow"]
    outcome = asyncio.run(play(served, actions))
    for label in features(outcome):
        event(label)  # --hypothesis-show-statistics: how often each path was taken
    check(outcome)


def features(outcome: Outcome) -> set[str]:
    found = {"left mid-answer" for log in outcome.logs if log.abandoned}
    for log in outcome.logs:
        for frame in log.frames:
            if frame["type"] == "done":
                found.add(f"done {frame['data']['finish_reason']} ({frame['data']['source']})")
            elif frame["type"] == "error":
                found.add(f"error {frame['data']['code']}")
    return found
