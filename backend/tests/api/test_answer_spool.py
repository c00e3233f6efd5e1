"""The answer spool: answers kept on disk while the database was away, stored once."""

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.answers import AnswerRecord
from app.chat.budgets import SERVICE_KEY, client_counter
from app.chat.repository import UsageRepository
from app.chat.spool import AnswerSpool
from app.db.tables import Conversation, Message, UsageCounter
from app.upkeep.recovery import mark_interrupted
from devtools.fake_llm import FakeLLM, Reply
from tests.api.test_admin import TOKEN, admin_http, converse, database
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

LATE = 100  # what the spooled answer cost


def _late_answer(question: Message, client_key: str, reserved: int) -> AnswerRecord:
    return AnswerRecord(
        conversation_id=question.conversation_id,
        client_key=client_key,
        reply_to=question.id,
        asked_on=question.created_at.date(),
        reserved=reserved,
        spent=LATE,
        content="A late answer.",
        created_at=question.created_at + timedelta(seconds=1),
        finish_reason="stop",
        source="model",
        prompt_tokens=LATE - 4,
        completion_tokens=4,
    )


async def _service_tokens(db: AsyncSession, on: datetime) -> int:
    tokens = await db.scalar(
        select(UsageCounter.tokens).where(
            UsageCounter.scope == "service", UsageCounter.day == on.date()
        )
    )
    return tokens or 0


async def test_a_spooled_answer_replaces_the_placeholder_and_is_stored_and_counted_once(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    async with running_app(settings) as port:
        session_id, _ = await converse(port, "An answered question?")
    conversation_id, reserved = uuid.UUID(session_id), 700
    asked = datetime.now(UTC)
    async with database(settings) as store:
        async with store.begin() as db:
            conversation = await db.get(Conversation, conversation_id)
            assert conversation is not None
            client_key, spent_before = conversation.client_key or "", conversation.tokens_used
            answered = await db.scalar(select(Message).where(Message.role == "user"))
            question = Message(
                conversation_id=conversation_id,
                role="user",
                content="Asked while the database blinked?",
                created_at=asked,
                reserved_tokens=reserved,
            )
            db.add(question)
            # As the question's transaction reserves: the conversation and today's counters.
            conversation.tokens_used += reserved
            keys = [SERVICE_KEY, client_counter(client_key)]
            service_before = await _service_tokens(db, asked)
            await UsageRepository(db).add(asked.date(), keys, reserved)
        # The turn's instance died with the answer in its spool: the sweep marks the question.
        assert await mark_interrupted(store, 1, now=asked + timedelta(seconds=2)) == 1
        async with running_app(settings) as port, chat(port, session_id) as visitor:
            await visitor.ask("Asked after that?")  # the late answer will come before it
        spool = AnswerSpool(tmp_path / "spool" / "answer-spool.jsonl")
        assert answered is not None
        late = _late_answer(question, client_key, reserved)
        for record in (late, late, _late_answer(answered, client_key, 0)):
            await spool.append(record)
        stored = await spool.replay(store)
        again = await spool.replay(store)
        async with store.begin() as db:
            answers = list(await db.scalars(select(Message).where(Message.role == "assistant")))
            tokens_used = await db.scalar(
                select(Conversation.tokens_used).where(Conversation.id == conversation_id)
            )
            service = await _service_tokens(db, asked)
    async with running_app(settings) as port, chat(port, session_id) as reader:
        history = [(m["role"], m["content"]) for m in reader.session["data"]["history"]]
    spent = sum((a.prompt_tokens or 0) + (a.completion_tokens or 0) for a in answers)
    assert (stored, again) == (1, 0)
    assert len(answers) == 3
    late_row = next(a for a in answers if a.reply_to == question.id)
    assert (late_row.content, late_row.finish_reason) == ("A late answer.", "stop")
    assert [role for role, _ in history] == ["user", "assistant"] * 3
    assert history[2:4] == [("user", question.content), ("assistant", "A late answer.")]
    assert tokens_used == spent, "reserved once, released once, spent once"
    assert service == service_before + spent - spent_before
    assert [p.name for p in (tmp_path / "spool").iterdir()] == ["answer-spool.jsonl.lock"]


async def test_an_answer_whose_conversation_was_deleted_meanwhile_is_neither_retried_nor_spooled(
    make_settings: SettingsFactory, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.default = Reply(tokens=[f"word{i} " for i in range(20)], token_delay=0.05)
    settings = make_settings(admin_token=TOKEN)
    async with running_app(settings) as port, chat(port) as visitor:
        await visitor.send({"type": "message", "data": "Tell me about her."})
        assert (await visitor.receive())["type"] == "chunk"
        async with admin_http(port) as admin:
            deleted = await admin.delete(f"/conversations/{visitor.session_id}")
        started = time.monotonic()
        answer = await visitor.collect()
        waited = time.monotonic() - started
    assert deleted.status_code == 204, deleted.text
    assert answer.final["type"] == "done"
    assert waited < 5, "a deleted conversation is not an outage to wait out"
    assert not settings.answer_spool_path.exists()
