"""Provider failures reach the visitor as named error codes; nothing stored is lost.

Resume-excerpt answers are switched off here (FALLBACK_MODE=error); test_fallback.py
covers them.
"""

import socket

import pytest

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

FAILURES = {
    "5xx past the retries": ([Reply(status=502)] * 3, "llm_unavailable", ""),
    "429 asking to wait too long": ([Reply(status=429, retry_after=30)], "llm_unavailable", ""),
    "key refused": ([Reply(status=401)], "llm_unavailable", ""),
    "hang before the first token": ([Reply(hang=True)], "llm_timeout", ""),
    "dropped mid-answer": ([Reply(drop_after=2)], "llm_unavailable", "Hello, "),
    "error object mid-stream": ([Reply(error_after=1)], "llm_unavailable", "Hello"),
    "malformed event": ([Reply(malformed_after=1)], "llm_unavailable", "Hello"),
    "stalls between chunks": ([Reply(token_delay=3)], "llm_timeout", "Hello"),
}


@pytest.mark.parametrize(("replies", "code", "partial"), FAILURES.values(), ids=FAILURES.keys())
async def test_provider_failure_is_reported_and_the_socket_stays_usable(
    make_settings: SettingsFactory,
    fake_llm: FakeLLM,
    replies: list[Reply],
    code: str,
    partial: str,
) -> None:
    fake_llm.script(*replies)
    settings = make_settings(
        llm_first_token_timeout=1.5,
        llm_chunk_timeout=0.5,
        llm_retry_max_wait=0.1,
        fallback_mode="error",
    )
    async with running_app(settings) as port:
        async with chat(port) as client:
            failed = await client.ask("First question?")
            assert failed.final["type"] == "error"
            assert failed.final["data"]["code"] == code
            assert failed.text == partial
            assert (await client.ask("Second question?")).final["type"] == "done"
        async with chat(port, client.session_id) as again:
            history = [(m["role"], m["content"]) for m in again.session["data"]["history"]]
    stored_partial = [("assistant", partial)] if partial else []
    assert history == [
        ("user", "First question?"),
        *stored_partial,
        ("user", "Second question?"),
        ("assistant", "Hello, world."),
    ]


async def test_rate_limited_provider_is_retried_after_its_retry_after(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(status=429, retry_after=0.2), Reply(status=503))
    async with running_app(make_settings()) as port, chat(port) as client:
        answer = await client.ask("Are you there?")
    assert answer.final["data"]["content"] == "Hello, world."
    assert len(fake_llm.requests) == 3


async def test_unreachable_provider_is_llm_unavailable(make_settings: SettingsFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = make_settings(
        openrouter_base_url=f"http://127.0.0.1:{closed_port}/v1", fallback_mode="error"
    )
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Anyone?")
    assert answer.final["data"]["code"] == "llm_unavailable"


async def test_missing_api_key_says_what_the_owner_must_do(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings(
        openrouter_api_key=None,
        openrouter_base_url="https://openrouter.ai/api/v1",
        fallback_mode="error",
    )
    async with running_app(settings) as port, chat(port) as client:
        answer = await client.ask("Hello?")
    assert answer.final["data"]["code"] == "llm_unavailable"
    assert "OPENROUTER_API_KEY" in answer.final["data"]["message"]
    assert fake_llm.requests == []


async def test_the_api_key_never_reaches_logs_or_clients(
    make_settings: SettingsFactory, fake_llm: FakeLLM, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_llm.script(Reply(status=401), Reply(status=500), Reply(status=500), Reply(status=500))
    settings = make_settings(log_level="DEBUG", fallback_mode="error")
    async with running_app(settings) as port, chat(port) as client:
        refused = await client.ask("One?")
        broken = await client.ask("Two?")
    logs = capfd.readouterr()
    assert "model provider" in logs.err  # the failures were logged...
    for text in (logs.out, logs.err, str(refused.final), str(broken.final)):
        assert "sk-test-secret-key" not in text  # ...without the key
