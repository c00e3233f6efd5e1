"""The app process killed mid-answer (SIGKILL): nothing stored is lost, the session goes on."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from app.core.config import Settings
from app.db.tables import Conversation, Message
from app.upkeep.recovery import cutoff_seconds, mark_interrupted
from devtools.fake_llm import FakeLLM, Reply
from tests.api.test_admin import converse, database
from tests.conftest import SettingsFactory
from tests.support.app import running_app, uvicorn_process
from tests.support.chat_client import ChatClient, chat

QUESTION = "Tell me about her."


async def _read_until_closed(client: ChatClient) -> None:
    while True:
        await client.receive()


def _settings(fake_llm: FakeLLM, database_url: str) -> dict[str, str]:
    return {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "database_url": database_url,
        "admin_token": "admin-token",
        "llm_total_timeout": "2",
        "shutdown_grace_seconds": "1",
        "answer_store_retry_seconds": "1",
    }


async def _killed_mid_answer(fake_llm: FakeLLM, settings: dict[str, str]) -> str:
    """An app process asked a question and killed (SIGKILL) after its first chunk; the
    session's id."""
    fake_llm.default = Reply(tokens=[f"word{i} " for i in range(100)], token_delay=0.05)
    async with uvicorn_process(**settings) as (port, process), chat(port) as client:
        await client.send({"type": "message", "data": QUESTION})
        assert (await client.receive())["type"] == "chunk"
        process.kill()
        with pytest.raises(ConnectionClosed):
            await _read_until_closed(client)
    return client.session_id


async def _transcript(port: int, session_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(headers={"Authorization": "Bearer admin-token"}) as http:
        reply = await http.get(f"http://127.0.0.1:{port}/api/admin/conversations/{session_id}")
    reply.raise_for_status()
    messages: list[dict[str, Any]] = reply.json()["messages"]
    return messages


async def test_sigkill_mid_answer_keeps_the_question_and_marks_the_answer_interrupted(
    fake_llm: FakeLLM, database_url: str
) -> None:
    settings = _settings(fake_llm, database_url)
    session_id = await _killed_mid_answer(fake_llm, settings)
    fake_llm.default = Reply()  # a short answer, well within LLM_TOTAL_TIMEOUT
    # No instance can still be answering once the cutoff has passed.
    await asyncio.sleep(cutoff_seconds(2, 1, 1) + 0.5)
    async with uvicorn_process(**settings) as (port, _):
        await asyncio.sleep(1)  # the start-up sweep
        marked = await _transcript(port, session_id)
        async with chat(port, session_id) as again:
            history = again.session["data"]["history"]
            after = await again.ask("And her languages?")
    assert [(m["role"], m["content"]) for m in marked] == [("user", QUESTION), ("assistant", "")]
    assert marked[1]["finish_reason"] == "interrupted"
    assert marked[1]["error_code"] == "answer_interrupted"
    assert [m["content"] for m in history] == [QUESTION]  # visitors see messages with text
    assert after.final["type"] == "done", after.final


async def test_a_question_left_behind_when_the_visitor_carried_on_elsewhere_is_answered(
    fake_llm: FakeLLM, database_url: str
) -> None:
    """Killed mid-answer, the visitor asks again at once on another instance: the first
    question is no longer the last word, and is still answered (once) and released."""
    settings = _settings(fake_llm, database_url)
    session_id = await _killed_mid_answer(fake_llm, settings)
    fake_llm.default = Reply()
    async with uvicorn_process(**settings) as (port, _), chat(port, session_id) as other:
        carried_on = await other.ask("And her languages?")  # before the cutoff
    await asyncio.sleep(cutoff_seconds(2, 1, 1) + 0.5)
    async with uvicorn_process(**settings) as (port, _):
        await asyncio.sleep(1)  # the start-up sweep
        marked = await _transcript(port, session_id)
    reading = Settings(_env_file=None, database_url=database_url)
    async with database(reading) as store, store.begin() as db:
        rows = list(await db.scalars(select(Message).order_by(Message.id)))
        conversation = await db.get(Conversation, uuid.UUID(session_id))
    questions = {m.id: m.content for m in rows if m.role == "user"}
    replies = [m.reply_to for m in rows if m.role == "assistant"]
    spent = sum((m.prompt_tokens or 0) + (m.completion_tokens or 0) for m in rows)
    print(f"\n{len(questions)} questions, {len(replies)} answers, {spent} tokens in the answers,"
          f" {conversation.tokens_used if conversation else None} counted")  # fmt: skip
    assert carried_on.final["type"] == "done"
    assert sorted(replies, key=str) == sorted(questions, key=str), "one answer per question"
    first = next(m for m in rows if m.reply_to == min(questions))
    assert (first.content, first.finish_reason) == ("", "interrupted")
    assert [m["content"] for m in marked if m["role"] == "user"] == list(questions.values())
    assert conversation is not None
    assert conversation.tokens_used == spent, "the killed turn's reservation is released"
    assert all(m.reserved_tokens is None for m in rows)


async def test_the_sweep_marks_only_old_unanswered_questions_and_each_once(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    async with running_app(settings) as port:
        await converse(port, "An answered question?")
    now = datetime.now(UTC)
    async with database(settings) as store:
        async with store.begin() as db:
            waiting = uuid.uuid4()
            db.add(Conversation(id=waiting, question_count=1))
            await db.flush()
            db.add(Message(conversation_id=waiting, role="user", content="Hello?", created_at=now))
        young = await mark_interrupted(store, 60, now=now)
        old = await mark_interrupted(store, 60, now=now + timedelta(seconds=61))
        again = await mark_interrupted(store, 60, now=now + timedelta(seconds=61))
        async with store.begin() as db:
            answers = list(await db.scalars(select(Message).where(Message.role == "assistant")))
    assert (young, old, again) == (0, 1, 0)
    marked = [a for a in answers if a.conversation_id == waiting]
    assert [(a.content, a.finish_reason) for a in marked] == [("", "interrupted")]
    assert len(answers) == 2  # the answered question's answer, and the marked one
