"""Fallback models, and answers from the resume itself when no model can answer."""

import httpx

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

LANGUAGES = "**Languages:**\n\n- **Swedish:** native"


async def test_without_a_key_the_chat_answers_from_the_resume(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings(
        openrouter_api_key=None, openrouter_base_url="https://openrouter.ai/api/v1"
    )
    async with running_app(settings) as port:
        async with chat(port) as client:
            answer = await client.ask("What languages does she speak?")
        async with chat(port, client.session_id) as again:
            history = again.session["data"]["history"]
        async with httpx.AsyncClient() as http:
            ready = await http.get(f"http://127.0.0.1:{port}/health/ready")

    done = answer.final["data"]
    assert answer.final["type"] == "done"
    assert done["source"] == "resume_excerpt"
    assert done["model"] is None
    assert done["content"] == answer.text
    assert done["content"].startswith(LANGUAGES)
    for language in ("Swedish", "English", "German"):
        assert language in done["content"]
    assert done["usage"]["total_tokens"] == 0
    assert history[-1]["content"] == done["content"]
    assert fake_llm.requests == []
    assert ready.status_code == 200
    assert ready.json()["mode"] == "resume_excerpt"


async def test_a_failing_primary_model_falls_back_to_the_next(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(*[Reply(status=503)] * 3, Reply(tokens=["From ", "backup."]))
    settings = make_settings(
        llm_model="primary/model", llm_fallback_models="backup/model", llm_retry_max_wait=0.1
    )
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Who is she?")
    assert answer.final["data"]["content"] == "From backup."
    assert answer.final["data"]["model"] == "backup/model"
    assert answer.final["data"]["source"] == "model"
    assert [r.body["model"] for r in fake_llm.requests] == ["primary/model"] * 3 + ["backup/model"]


async def test_the_fallback_that_answered_is_named_even_if_the_provider_does_not(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(status=500), Reply(tokens=["Local."], name_model=False))
    settings = make_settings(
        llm_model="bad/model", llm_fallback_models="good/model", llm_max_retries=0
    )
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Who?")
    assert answer.final["data"]["model"] == "good/model"


async def test_a_prompt_too_long_for_the_primary_goes_to_the_fallback(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(status=400), Reply(tokens=["Bigger ", "window."]))
    settings = make_settings(llm_model="small/model", llm_fallback_models="large/model")
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Tell me everything.")
    assert answer.final["data"]["model"] == "large/model"
    assert len(fake_llm.requests) == 2


async def test_openrouter_routes_the_fallbacks_itself(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings(
        llm_model="primary/model",
        llm_fallback_models="backup/one,backup/two",
        llm_fallback_routing="provider",
    )
    async with running_app(settings) as port, chat(port) as client:
        await client.ask("Hello?")
    body = fake_llm.requests[-1].body
    assert body["models"] == ["primary/model", "backup/one", "backup/two"]
    assert len(fake_llm.requests) == 1


async def test_when_every_model_fails_the_resume_answers(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.default = Reply(status=502)
    settings = make_settings(
        llm_fallback_models="backup/model", llm_max_retries=0, llm_retry_max_wait=0.1
    )
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Where did she study?")
    assert answer.final["type"] == "done"
    assert answer.final["data"]["source"] == "resume_excerpt"
    assert "Education" in answer.final["data"]["content"]
    assert len(fake_llm.requests) == 2


async def test_a_model_that_fails_mid_answer_is_not_replaced(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(drop_after=2))
    settings = make_settings(llm_fallback_models="backup/model")
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Hi?")
    assert answer.final["data"]["code"] == "llm_unavailable"
    assert answer.text == "Hello, "
    assert len(fake_llm.requests) == 1


async def test_fallback_mode_error_reports_the_failure(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.default = Reply(status=502)
    settings = make_settings(fallback_mode="error", llm_max_retries=0)
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Hi?")
    assert answer.final["data"]["code"] == "llm_unavailable"
