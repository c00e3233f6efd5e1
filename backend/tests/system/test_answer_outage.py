"""PostgreSQL blinking while an answer is stored: the answer is kept, stored once and counted.

The fault proxy (`tests.support.fault_proxy`) cuts the app's database connections after
the first chunk of an answer. When the database is back within
`ANSWER_STORE_RETRY_SECONDS` the retries store the answer; when it stays away longer the
answer goes to the spool, and the recovery sweep stores it once the database is back.
Either way the visitor gets `done`, every stored question ends with exactly one answer
row, and the budgets count what was streamed.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.db.engine import Database, make_database
from app.db.tables import Conversation, Message, UsageCounter
from devtools.fake_llm import FakeLLM, Reply
from tests.support.app import running_app
from tests.support.chat_client import chat
from tests.support.fault_proxy import FaultProxy

WORDS = [f"word{i} " for i in range(20)]


@pytest.fixture
async def direct(postgres_url: str) -> AsyncIterator[Database]:
    """The same database, not through the proxy: what is stored, whatever the app sees."""
    engine = create_async_engine(postgres_url)
    try:
        yield make_database(engine)
    finally:
        await engine.dispose()


async def _messages(database: Database) -> list[Message]:
    async with database.begin() as db:
        return list(await db.scalars(select(Message).order_by(Message.id)))


def _by_question(messages: list[Message]) -> dict[int, list[Message]]:
    """Each question's answers (under 0, answers that name no question)."""
    by_question: dict[int, list[Message]] = {m.id: [] for m in messages if m.role == "user"}
    for message in messages:
        if message.role == "assistant":
            by_question.setdefault(message.reply_to or 0, []).append(message)
    return by_question


async def _stored(database: Database, answers: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        messages = await _messages(database)
        if sum(m.role == "assistant" for m in messages) >= answers:
            return
        await asyncio.sleep(0.5)


@pytest.mark.postgres
@pytest.mark.parametrize("outage", ["shorter than the retries", "longer than the retries"])
async def test_an_answer_finished_while_the_database_is_away_is_stored_once_and_counted(
    postgres_proxy: FaultProxy,
    postgres_url: str,
    direct: Database,
    fake_llm: FakeLLM,
    tmp_path: Path,
    outage: str,
) -> None:
    fake_llm.default = Reply(tokens=WORDS, token_delay=0.05)
    short = outage == "shorter than the retries"
    settings = Settings(
        _env_file=None,
        openrouter_api_key="sk-test",
        openrouter_base_url=fake_llm.base_url,
        llm_max_retries=0,
        database_url=postgres_proxy.url(postgres_url),
        llm_total_timeout=2,
        shutdown_grace_seconds=1,
        answer_store_retry_seconds=15 if short else 0.5,
        answer_spool_path=tmp_path / "answer-spool.jsonl",
    )
    async with running_app(settings) as port, chat(port) as visitor:
        before = await visitor.ask("Where does she work?")
        await visitor.send({"type": "message", "data": "What did she study?"})
        first = await visitor.receive()
        assert first["type"] == "chunk"
        postgres_proxy.cut()
        if short:
            answering = asyncio.create_task(visitor.collect())
            await asyncio.sleep(2)
            postgres_proxy.restore()
            during = await answering
        else:
            during = await visitor.collect()
            refused = await visitor.ask("And her languages?")  # still away: not stored
            assert refused.final["data"]["code"] == "storage_unavailable"
            postgres_proxy.restore()
        # The spool is stored by the next sweep (every half cutoff, ~7 s here).
        await _stored(direct, answers=2, within=20)
        after = await visitor.ask("Anything else?")
    messages = await _messages(direct)
    async with direct.begin() as db:
        conversation = await db.get(Conversation, uuid.UUID(visitor.session_id))
        service = await db.scalar(
            select(func.sum(UsageCounter.tokens)).where(UsageCounter.scope == "service")
        )
    answers = [m for m in messages if m.role == "assistant"]
    spent = sum((a.prompt_tokens or 0) + (a.completion_tokens or 0) for a in answers)
    print(
        f"\noutage {outage}: the visitor got {during.final['type']} after the whole answer;"
        f" {len(messages) - len(answers)} questions, {len(answers)} answers stored;"
        f" {spent} tokens in the answers, {service} counted"
    )
    by_question = _by_question(messages)
    reserved = [m.id for m in messages if m.reserved_tokens is not None]

    assert before.final["type"] == "done"
    assert during.final["type"] == "done", during.final
    assert after.final["type"] == "done"
    assert 0 not in by_question, "every answer names its question"
    assert [len(replies) for replies in by_question.values()] == [1, 1, 1]
    streamed = first["data"] + during.text
    assert streamed == "".join(WORDS)
    assert [replies[0].content for replies in by_question.values()][1] == streamed
    assert conversation is not None
    assert conversation.tokens_used == spent == service
    assert reserved == []
    assert not (tmp_path / "answer-spool.jsonl").exists()
