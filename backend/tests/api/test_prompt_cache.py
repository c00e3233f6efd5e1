"""Prompt caching end to end: what goes upstream, what the provider reports, what it cost.

The stand-in provider keeps a prefix cache (`FakeLLM(prompt_cache=...)`) and reports
`prompt_tokens_details.cached_tokens` and `cache_write_tokens` as providers do.
"""

import uuid
from typing import Any

import httpx
import pytest

from app.core.logger import session_id_var
from app.llm.caching import PromptCache, sticky_key
from devtools.fake_llm import FakeLLM
from devtools.fake_llm import PromptCache as ProviderCache
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

TOKEN = "admin-test-token"
PRICES = {
    "llm_prompt_price_per_mtok": 3.0,
    "llm_completion_price_per_mtok": 15.0,
    "llm_cached_input_price_per_mtok": 0.3,
    "llm_cache_write_price_per_mtok": 3.75,
}


async def chat_twice(port: int) -> str:
    async with chat(port) as client:
        for question in ("What does she do?", "Where did she study?"):
            assert (await client.ask(question)).final["type"] == "done"
    return client.session_id


async def admin(port: int, path: str) -> Any:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}/api/admin",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as http:
        return (await http.get(path)).json()


async def test_a_breakpoint_model_caches_the_resume_and_stats_show_the_saving(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.prompt_cache = ProviderCache()
    settings = make_settings(llm_model="anthropic/claude-3.5-haiku", admin_token=TOKEN, **PRICES)
    async with running_app(settings) as port:
        session_id = await chat_twice(port)
        transcript = await admin(port, f"/conversations/{session_id}")
        stats = await admin(port, "/stats?days=1")

    systems = [request.body["messages"][0] for request in fake_llm.requests]
    assert systems[0] == systems[1]  # the resume: the same bytes first in every request
    [part] = systems[0]["content"]
    assert part["cache_control"] == {"type": "ephemeral"}
    assert "<resume>" in part["text"]
    written = len(part["text"]) // 4  # the stand-in provider's token count
    answers = [m for m in transcript["messages"] if m["role"] == "assistant"]
    assert [(a["cached_tokens"], a["cache_write_tokens"]) for a in answers] == [
        (0, written),
        (written, 0),
    ]
    totals = stats["totals"]
    prompt, completion = totals["prompt_tokens"], totals["completion_tokens"]
    assert (totals["cached_tokens"], totals["cache_write_tokens"]) == (written, written)
    fresh = prompt - 2 * written
    expected = (fresh * 3.0 + written * 0.3 + written * 3.75 + completion * 15.0) / 1e6
    assert totals["cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert totals["cost_saved_usd"] == pytest.approx(written * (3.0 - 0.3 - 0.75) / 1e6, abs=1e-6)
    assert stats["cached_input_price_per_mtok"] == 0.3


async def test_a_model_that_caches_by_itself_gets_plain_text_and_reports_reads(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.prompt_cache = ProviderCache()
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        session_id = await chat_twice(port)
        transcript = await admin(port, f"/conversations/{session_id}")

    systems = [request.body["messages"][0] for request in fake_llm.requests]
    assert systems[0] == systems[1]
    assert isinstance(systems[0]["content"], str)
    answers = [m for m in transcript["messages"] if m["role"] == "assistant"]
    cached = len(systems[0]["content"]) // 4
    assert [(a["cached_tokens"], a["cache_write_tokens"]) for a in answers] == [
        (0, 0),
        (cached, 0),
    ]


async def test_prompt_cache_off_sends_no_breakpoint(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings(llm_model="anthropic/claude-3.5-haiku", llm_prompt_cache="off")
    async with running_app(settings) as port:
        await chat_twice(port)

    assert all(isinstance(r.body["messages"][0]["content"], str) for r in fake_llm.requests)
    assert all("session_id" not in r.body for r in fake_llm.requests)


def test_openrouter_gets_a_hash_of_the_session_as_its_sticky_routing_key() -> None:
    session = str(uuid.uuid4())
    payload = {"model": "openai/gpt-4o-mini", "messages": [{"role": "system", "content": "R"}]}
    token = session_id_var.set(session)
    try:
        sent = PromptCache("auto", openrouter=True).apply(dict(payload), ["openai/gpt-4o-mini"])
        elsewhere = PromptCache("auto", openrouter=False).apply(dict(payload), ["x/y"])
    finally:
        session_id_var.reset(token)
    outside = PromptCache("auto", openrouter=True).apply(dict(payload), ["x/y"])

    assert sent["session_id"] == sticky_key(session) != session
    assert len(sent["session_id"]) <= 256
    assert sent["messages"] == payload["messages"]  # OpenAI's models cache by themselves
    assert "session_id" not in elsewhere
    assert "session_id" not in outside
