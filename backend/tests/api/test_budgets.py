"""Token budgets and the context window, with usage stored in the database."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app.core.config import Settings
from app.db.tables import Conversation, Message, UsageCounter
from devtools.fake_llm import FakeLLM, Reply
from tests.api.test_admin import database
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

# The fake provider reports about 320 prompt tokens for the sample resume and the
# default answer costs 4 completion tokens: a budget of 500 allows exactly one answer.
ONE_ANSWER = 500


@pytest.mark.parametrize(
    "budget",
    ["budget_tokens_per_session", "budget_tokens_per_ip_per_day", "budget_tokens_per_day"],
)
async def test_a_spent_budget_refuses_questions_before_they_go_upstream(
    make_settings: SettingsFactory, fake_llm: FakeLLM, budget: str
) -> None:
    settings = make_settings(**{budget: ONE_ANSWER})
    async with running_app(settings) as port:
        async with chat(port) as client:
            assert (await client.ask("First?")).final["type"] == "done"
            same_session = await client.ask("Second?")
        async with chat(port) as other:
            other_session = await other.ask("Third?")
    # Budgets survive a restart: they are kept in the database.
    async with running_app(settings) as port, chat(port, client.session_id) as again:
        after_restart = await again.ask("Fourth?")

    assert same_session.final["data"]["code"] == "budget_exceeded"
    assert after_restart.final["data"]["code"] == "budget_exceeded"
    expected_other = "done" if budget == "budget_tokens_per_session" else "error"
    assert other_session.final["type"] == expected_other
    assert len(fake_llm.requests) == (2 if expected_other == "done" else 1)


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ({"budget_tokens_per_session": ONE_ANSWER}, "budget_exceeded"),
        ({"budget_tokens_per_ip_per_day": ONE_ANSWER}, "budget_exceeded"),
        ({"budget_tokens_per_day": ONE_ANSWER}, "budget_exceeded"),
        ({"max_turns_per_session": 1}, "session_limit_reached"),
    ],
)
async def test_a_refused_question_changes_nothing_stored(
    make_settings: SettingsFactory, limit: dict[str, int], code: str
) -> None:
    """On PostgreSQL the check and the writes are one function call (`chat_ask`); on
    SQLite a transaction rolled back. Either way a refusal leaves no trace but the
    error: no message, no question counted, no tokens reserved."""
    settings = make_settings(**limit)
    async with running_app(settings) as port, chat(port) as client:
        assert (await client.ask("First?")).final["type"] == "done"
        before = await stored_totals(settings)
        refused = await client.ask("Second?")
        after = await stored_totals(settings)

    assert refused.final["data"]["code"] == code
    assert (before["messages"], before["questions"]) == (2, 1)
    assert before["tokens"] == before["service_today"] > 0  # the answer's, nothing reserved
    assert after == before


async def stored_totals(settings: Settings) -> dict[str, int]:
    """Messages, questions counted and tokens in the conversations and today's counters."""
    async with database(settings) as store, store.begin() as db:
        totals = {
            "messages": await db.scalar(select(func.count()).select_from(Message)),
            "questions": await db.scalar(select(func.sum(Conversation.question_count))),
            "tokens": await db.scalar(select(func.sum(Conversation.tokens_used))),
            "service_today": await db.scalar(
                select(func.sum(UsageCounter.tokens)).where(UsageCounter.scope == "service")
            ),
            "client_today": await db.scalar(
                select(func.sum(UsageCounter.tokens)).where(UsageCounter.scope == "client")
            ),
        }
    return {name: value or 0 for name, value in totals.items()}


async def test_only_the_newest_whole_turns_that_fit_are_sent(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    long_answer = [f"detail{i} " for i in range(200)]  # ~400 tokens each
    fake_llm.default = Reply(tokens=long_answer)
    # Room for the resume, one question, the answer budget and about two earlier turns
    # (without the tools, whose definitions and rules would take ~390 of these tokens).
    settings = make_settings(llm_context_tokens=3000, llm_max_tokens=700, llm_tools="off")
    async with running_app(settings) as port:
        async with chat(port) as client:
            for n in range(5):
                await client.ask(f"Question {n}?")
        async with chat(port, client.session_id) as again:
            stored = again.session["data"]["history"]

    sent = fake_llm.requests[-1].body["messages"]
    questions_sent = [m["content"] for m in sent if m["role"] == "user"]
    assert questions_sent[-1] == "Question 4?"
    assert questions_sent == ["Question 2?", "Question 3?", "Question 4?"]
    assert [m["role"] for m in sent[1:]] == ["user", "assistant"] * 2 + ["user"]
    assert len(stored) == 10  # trimming the prompt never deletes history


async def test_a_resume_that_leaves_no_room_stops_startup(
    make_settings: SettingsFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(llm_context_tokens=1500, llm_max_tokens=700)
    with pytest.raises(RuntimeError, match="failed to start"):
        async with running_app(settings):
            pass
    err = capfd.readouterr().err
    assert "LLM_CONTEXT_TOKENS=1500" in err
    assert "LLM_MAX_TOKENS=700" in err


async def test_metrics_count_a_scripted_session(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(), Reply(status=500), Reply(status=500), Reply(status=500))
    settings = make_settings(
        rate_limit_questions_per_session="2/minute",
        budget_tokens_per_session=0,
        fallback_mode="error",
    )
    async with running_app(settings) as port, chat(port) as client:
        await client.ask("Answered?")
        await client.ask("Upstream fails?")
        await client.ask("Rate limited?")
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("resume_chat_questions_total", (("outcome", "stop"),))] == 1
    assert samples[("resume_chat_questions_total", (("outcome", "llm_unavailable"),))] == 1
    assert samples[("resume_chat_upstream_errors_total", (("code", "llm_unavailable"),))] == 1
    assert samples[("resume_chat_refusals_total", (("code", "rate_limited"),))] == 1
    assert samples[("resume_chat_open_connections", ())] == 1
    assert samples[("resume_chat_tokens_total", (("direction", "out"),))] == 4
    assert samples[("resume_chat_first_token_seconds_count", ())] == 1
    assert samples[("resume_chat_answer_seconds_count", ())] == 2
