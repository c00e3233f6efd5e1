"""The service as users run it: `resume-chat serve` in its own process."""

import asyncio
import contextlib
import signal
import sys
import uuid
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devtools.fake_llm import FakeLLM, Reply
from tests.support.app import BACKEND, clean_env, free_port, start_process, uvicorn_process
from tests.support.chat_client import ChatClient, chat


async def test_bad_configuration_stops_startup_with_one_clear_line(tmp_path: Path) -> None:
    cases = {
        "LLM_TEMPERATURE": ({"llm_temperature": "hot"}, "Invalid setting LLM_TEMPERATURE"),
        "DATABASE_URL": ({"database_url": "mysql://x"}, "Invalid setting DATABASE_URL"),
        "no +asyncpg": (
            {"database_url": "postgresql://u:hunter2@db.example/x"},
            "Invalid setting DATABASE_URL: Value error, must start with postgresql+asyncpg://",
        ),
        "port not a number": (
            {"database_url": "postgresql+asyncpg://u:hunter2@db.example:port/x"},
            "Invalid setting DATABASE_URL: Value error, is not a database URL",
        ),
        "malformed REDIS_URL": (
            {"redis_url": "redis://u:hunter2@redis.example:port/0"},
            "REDIS_URL redis://u:***@redis.example:port/0 is not a Redis URL",
        ),
        "bad OPENROUTER_BASE_URL": (
            {"openrouter_base_url": "ftp://u:hunter2@llm.example/v1"},
            "Invalid setting OPENROUTER_BASE_URL",
        ),
        "ALLOWED_ORIGINS with a path": (
            {"allowed_origins": "https://site.example/,site.example/chat"},
            "Invalid setting ALLOWED_ORIGINS: Value error, 'site.example/chat' is not an origin",
        ),
        "missing resume": (
            {"resume_path": str(tmp_path / "nope.md")},
            f"Resume file {tmp_path / 'nope.md'} does not exist",
        ),
        "unreachable database": (
            {"database_url": f"postgresql+asyncpg://u:hunter2@127.0.0.1:{free_port()}/x"},
            "Cannot prepare the database postgresql+asyncpg://u:***@127.0.0.1",
        ),
    }
    db = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    processes = [
        await start_process(free_port(), **({"database_url": db} | settings))
        for settings, _ in cases.values()
    ]
    async with asyncio.timeout(60):
        outputs = await asyncio.gather(*(p.communicate() for p in processes))
    for (name, (_, expected)), process, (_, err) in zip(
        cases.items(), processes, outputs, strict=True
    ):
        stderr = err.decode()
        assert process.returncode != 0, name
        assert expected in stderr, f"{name}: {stderr}"
        assert "Traceback" not in stderr, f"{name}: {stderr}"
        assert "hunter2" not in stderr
    origins = outputs[list(cases).index("ALLOWED_ORIGINS with a path")][1].decode()
    assert len(origins.strip().splitlines()) == 1, origins


async def test_sigterm_lets_the_answer_finish_then_closes_with_1001(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    tokens = [f"word{i} " for i in range(8)]
    fake_llm.default = Reply(tokens=tokens, token_delay=0.1)
    settings = {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
    }
    async with uvicorn_process(**settings) as (port, process), chat(port) as client:
        await client.send({"type": "message", "data": "Tell me about her."})
        first = await client.receive()
        process.send_signal(signal.SIGTERM)
        rest = await client.collect()  # the visitor still sees the whole answer
        with pytest.raises(ConnectionClosed) as closed:
            await client.receive()
        async with asyncio.timeout(20):
            await process.wait()
        session_id = client.session_id
    assert first["data"] + rest.text == "".join(tokens)
    assert rest.final["type"] == "done"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    # uvicorn re-raises the signal it handled once shut down, so -SIGTERM is a clean exit.
    assert process.returncode in (0, -signal.SIGTERM)
    async with uvicorn_process(**settings) as (port, _), chat(port, session_id) as client:
        history = client.session["data"]["history"]
    assert [m["content"] for m in history] == ["Tell me about her.", "".join(tokens)]


async def test_two_app_processes_sharing_redis_enforce_one_limit(
    fake_llm: FakeLLM, tmp_path: Path, redis_url: str
) -> None:
    settings = {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "redis_url": redis_url,
        "redis_key_prefix": f"test-{uuid.uuid4()}",
        "rate_limit_questions_per_ip": "3/minute",
        "max_connections_per_ip": "1",
    }
    async with uvicorn_process(**settings) as (a, _), uvicorn_process(**settings) as (b, _):
        finals = []
        for port in (a, b, a, b):
            async with contextlib.AsyncExitStack() as stack:
                client = await connect_when_free(stack, port)
                finals.append((await client.ask("Hello?")).final)
        async with contextlib.AsyncExitStack() as stack:
            await connect_when_free(stack, a)
            with pytest.raises(InvalidStatus) as refused:
                async with chat(b):
                    pass
    assert [f["type"] for f in finals] == ["done", "done", "done", "error"]
    assert finals[-1]["data"]["code"] == "rate_limited"
    assert refused.value.response.status_code == 429


async def connect_when_free(stack: contextlib.AsyncExitStack, port: int) -> ChatClient:
    """`chat(port)` in `stack`, once the client's one connection slot is free again: the
    server frees a closed socket's slot just after the closing handshake, which the client
    does not wait for, so an instant reconnection may still be refused (429)."""
    async with asyncio.timeout(10):
        while True:
            try:
                return await stack.enter_async_context(chat(port))
            except InvalidStatus as error:
                if error.response.status_code != 429:
                    raise
            await asyncio.sleep(0.05)


async def test_alembic_upgrade_head_from_the_command_line(database_url: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "alembic", "upgrade", "head",
        cwd=BACKEND, env=clean_env(database_url=database_url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "Running upgrade  -> 0001" in err.decode()
