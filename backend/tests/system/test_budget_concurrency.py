"""Budgets under concurrency: 50 questions at once against a 3,000-token budget.

Each test prints the tokens spent, the figure the hardening issue (#13, part 4) quotes;
a budget may be overshot by at most one answer (its prompt plus `LLM_MAX_TOKENS`).
"""

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from app.core.config import OPENROUTER_BASE_URL
from app.db.tables import Message, UsageCounter
from devtools.fake_llm import FakeLLM, Reply
from tests.api.test_admin import database
from tests.conftest import SettingsFactory
from tests.support.app import running_app

BUDGET = 3_000
QUESTIONS = 50
MAX_TOKENS = 100
NO_BUDGETS = {
    "budget_tokens_per_session": 0,
    "budget_tokens_per_ip_per_day": 0,
    "budget_tokens_per_day": 0,
}


async def _ask(http: httpx.AsyncClient, port: int, session_id: str | None) -> int:
    body: dict[str, object] = {"message": "Tell me about her work."}
    if session_id is not None:
        body["session_id"] = session_id
    reply = await http.post(f"http://127.0.0.1:{port}/api/chat", json=body)
    assert reply.status_code in (200, 429), reply.text
    if reply.status_code == 429:
        assert reply.json()["error"]["code"] == "budget_exceeded", reply.text
    return reply.status_code


@pytest.mark.parametrize(
    "budget", ["budget_tokens_per_session", "budget_tokens_per_ip_per_day", "budget_tokens_per_day"]
)
async def test_concurrent_questions_overshoot_a_budget_by_at_most_one_answer(
    make_settings: SettingsFactory, fake_llm: FakeLLM, budget: str
) -> None:
    fake_llm.default = Reply(tokens=[f"w{i} " for i in range(40)], token_delay=0.005)
    settings = make_settings(
        **(NO_BUDGETS | {budget: BUDGET}),
        llm_max_tokens=MAX_TOKENS,
        max_turns_per_session=1_000,
        max_connections_per_ip=1_000,
    )
    one_session = budget == "budget_tokens_per_session"
    async with running_app(settings) as port:
        limits = httpx.Limits(max_connections=QUESTIONS)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            session_id = str(uuid.uuid4()) if one_session else None
            if session_id is not None:  # a stored session, which the 50 questions share
                first = await http.post(
                    f"http://127.0.0.1:{port}/api/chat", json={"message": "Hello?"}
                )
                session_id = first.json()["session_id"]
            statuses = await asyncio.gather(
                *(_ask(http, port, session_id) for _ in range(QUESTIONS))
            )
    async with database(settings) as store, store.begin() as db:
        answers = list(await db.scalars(select(Message).where(Message.role == "assistant")))
        counted = await db.scalar(
            select(func.sum(UsageCounter.tokens)).where(UsageCounter.scope == "service")
        )
    spent = sum((a.prompt_tokens or 0) + (a.completion_tokens or 0) for a in answers)
    one_answer = max(a.prompt_tokens or 0 for a in answers) + MAX_TOKENS
    print(
        f"\n{budget}={BUDGET}, {QUESTIONS} concurrent questions: {statuses.count(200)} answered,"
        f" {statuses.count(429)} refused, {spent} tokens spent (one answer at most {one_answer})"
    )
    assert counted == spent, "the counters hold what the answers cost, no reservation left"
    assert statuses.count(200) >= 1
    assert spent <= BUDGET + one_answer


async def test_excerpt_answers_reserve_nothing_so_concurrent_ones_are_never_refused(
    make_settings: SettingsFactory,
) -> None:
    no_model = {"openrouter_api_key": None, "openrouter_base_url": OPENROUTER_BASE_URL}
    settings = make_settings(**no_model, **(NO_BUDGETS | {"budget_tokens_per_day": 1_000}))
    async with running_app(settings) as port, httpx.AsyncClient(timeout=60) as http:
        statuses = await asyncio.gather(*(_ask(http, port, None) for _ in range(10)))
    assert statuses == [200] * 10
