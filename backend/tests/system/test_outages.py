"""PostgreSQL and Redis going away under a running app, through `tests.support.fault_proxy`."""

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from app.core.config import Settings
from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import TEST_REDIS_URL, reset_postgres_sync
from tests.support.app import app_process, free_port, running_app, start_process
from tests.support.chat_client import chat
from tests.support.fault_proxy import FaultProxy


def app_settings(fake_llm: FakeLLM, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "llm_max_retries": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(redis_url) as proxy:
        yield proxy


async def ready(port: int) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"http://127.0.0.1:{port}/health/ready")


async def ask_rest(port: int, question: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"http://127.0.0.1:{port}/api/chat", json={"message": question})


@pytest.mark.postgres
async def test_database_outage_is_storage_unavailable_then_service_resumes_by_itself(
    postgres_proxy: FaultProxy, postgres_url: str, fake_llm: FakeLLM
) -> None:
    fake_llm.default = Reply(tokens=["An ", "answer."])
    settings = app_settings(fake_llm, database_url=postgres_proxy.url(postgres_url))
    async with running_app(settings) as port, chat(port) as visitor:
        before = await visitor.ask("Where does she work?")
        postgres_proxy.cut()
        started = time.monotonic()
        during = await visitor.ask("What did she study?")
        rest = await ask_rest(port, "And her languages?")
        not_ready = await ready(port)
        elapsed = time.monotonic() - started
        postgres_proxy.restore()
        after = await visitor.ask("What did she study?")  # the same socket, no restart
        back = await ready(port)
        async with chat(port, visitor.session_id) as later:
            history = [m["content"] for m in later.session["data"]["history"]]
    assert before.final["type"] == "done"
    assert during.final["type"] == "error"
    assert during.final["data"]["code"] == "storage_unavailable"
    assert rest.status_code == 503
    assert rest.json()["error"]["code"] == "storage_unavailable"
    assert not_ready.status_code == 503
    database = not_ready.json()["components"]["database"]
    assert database["ok"] is False
    assert "unreachable" in database["detail"]
    assert elapsed < 5, "an outage must be reported at once, not after a long hang"
    assert after.final["type"] == "done"
    assert back.status_code == 200
    assert history == [
        "Where does she work?",
        "An answer.",
        "What did she study?",
        "An answer.",
    ]


@pytest.mark.postgres
async def test_a_database_that_stops_answering_is_an_outage_not_a_hang(
    postgres_proxy: FaultProxy, postgres_url: str, fake_llm: FakeLLM
) -> None:
    """A frozen network (no reset, no reply) is bounded by the connect and query timeouts."""
    fake_llm.default = Reply(tokens=["An ", "answer."])
    settings = app_settings(
        fake_llm,
        database_url=postgres_proxy.url(postgres_url),
        database_connect_timeout=0.5,
        database_query_timeout=0.5,
    )
    async with running_app(settings) as port, chat(port) as visitor:
        assert (await visitor.ask("Where does she work?")).final["type"] == "done"
        postgres_proxy.freeze()
        started = time.monotonic()
        during = await visitor.ask("What did she study?")
        not_ready = await ready(port)
        elapsed = time.monotonic() - started
        postgres_proxy.restore()
        after = await visitor.ask("What did she study?")
        back = await ready(port)
    assert during.final["data"]["code"] == "storage_unavailable"
    assert not_ready.status_code == 503
    assert not_ready.json()["components"]["database"]["detail"].startswith("unreachable")
    assert elapsed < 5
    assert after.final["type"] == "done"
    assert back.status_code == 200


async def eventually_ready(port: int, rate_limits: str) -> httpx.Response:
    """Readiness once its `rate_limits` detail is `rate_limits` (Redis is checked every second)."""
    async with asyncio.timeout(5):
        while True:
            response = await ready(port)
            if response.json()["components"]["rate_limits"]["detail"] == rate_limits:
                return response
            await asyncio.sleep(0.1)


@pytest.mark.redis
async def test_redis_outage_failing_open_keeps_answering_and_readiness_says_so(
    redis_proxy: FaultProxy, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    settings = app_settings(
        fake_llm,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        redis_url=redis_proxy.url(TEST_REDIS_URL),
        redis_key_prefix=f"test-{uuid.uuid4().hex}",
        rate_limit_questions_per_ip="3/minute",
    )
    async with running_app(settings) as port, chat(port) as visitor:
        before = await visitor.ask("Where does she work?")
        redis_proxy.cut()
        during = [await visitor.ask(f"Question {n}?") for n in range(4)]
        async with chat(port) as newcomer:  # new sockets are let in too
            pass
        degraded = await ready(port)
        redis_proxy.restore()
        back = await eventually_ready(port, "redis")
    assert before.final["type"] == "done"
    # The same limits, counted afresh in this process: three answered, the fourth refused.
    assert [answer.final["type"] for answer in during] == ["done", "done", "done", "error"]
    assert during[3].final["data"]["code"] == "rate_limited"
    assert newcomer.session["type"] == "session"
    assert degraded.status_code == 200
    components = degraded.json()["components"]
    assert components["rate_limits"] == {"ok": True, "detail": "memory (redis unreachable)"}
    assert components["redis"] == {"ok": False, "detail": "unreachable"}
    assert back.status_code == 200
    assert back.json()["components"]["redis"]["ok"] is True


@pytest.mark.redis
async def test_redis_outage_failing_closed_refuses_then_resumes_by_itself(
    redis_proxy: FaultProxy, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    settings = app_settings(
        fake_llm,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        redis_url=redis_proxy.url(TEST_REDIS_URL),
        redis_key_prefix=f"test-{uuid.uuid4().hex}",
        rate_limit_fail_open=False,
    )
    async with running_app(settings) as port, chat(port) as visitor:
        before = await visitor.ask("Where does she work?")
        redis_proxy.cut()
        during = await visitor.ask("What did she study?")
        rest = await ask_rest(port, "And her languages?")
        with pytest.raises(InvalidStatus) as refused:
            async with chat(port):
                pass
        not_ready = await ready(port)
        redis_proxy.restore()
        after = await visitor.ask("What did she study?")  # the same socket, no restart
        back = await ready(port)
    assert before.final["type"] == "done"
    assert during.final["data"]["code"] == "storage_unavailable"
    assert rest.status_code == 503
    assert rest.json()["error"]["code"] == "storage_unavailable"
    assert refused.value.response.status_code == 503
    assert not_ready.status_code == 503
    assert not_ready.json()["components"]["rate_limits"] == {
        "ok": False,
        "detail": "refusing questions (redis unreachable)",
    }
    assert after.final["type"] == "done"
    assert back.status_code == 200


def process_settings(fake_llm: FakeLLM, tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        **overrides,
    }


@pytest.mark.redis
async def test_started_while_redis_is_down_failing_open_comes_up_on_memory(
    redis_proxy: FaultProxy, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    redis_proxy.cut()
    settings = process_settings(
        fake_llm,
        tmp_path,
        redis_url=redis_proxy.url(TEST_REDIS_URL),
        redis_key_prefix=f"test-{uuid.uuid4().hex}",
    )
    async with app_process(**settings) as port:
        degraded = await ready(port)
        async with chat(port) as visitor:
            answer = await visitor.ask("Where does she work?")
        redis_proxy.restore()
        back = await eventually_ready(port, "redis")
    assert degraded.status_code == 200
    assert degraded.json()["components"]["rate_limits"]["detail"] == "memory (redis unreachable)"
    assert answer.final["type"] == "done"
    assert back.status_code == 200


@pytest.mark.redis
async def test_started_while_redis_is_down_failing_closed_refuses_to_start(
    redis_proxy: FaultProxy, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    redis_proxy.cut()
    url = redis_proxy.url(TEST_REDIS_URL)
    settings = process_settings(fake_llm, tmp_path, redis_url=url, rate_limit_fail_open="false")
    process = await start_process(free_port(), **settings)
    async with asyncio.timeout(30):
        _, err = await process.communicate()
    stderr = err.decode()
    assert process.returncode != 0
    assert f"Cannot start: Redis at {url} did not answer" in stderr
    assert "RATE_LIMIT_FAIL_OPEN is false" in stderr
    assert "Traceback" not in stderr


async def open_connections(port: int) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("resume_chat_open_connections "))
    return float(line.split()[1])


async def gauge_reaches(port: int, value: float) -> None:
    async with asyncio.timeout(10):
        while True:
            if await open_connections(port) == value:
                return
            await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("uvicorn_args", "idle_timeout"),
    [
        pytest.param(("--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5"), "60", id="ping"),
        pytest.param(("--ws-ping-interval", "60"), "1", id="idle-timeout"),
    ],
)
async def test_a_half_open_socket_is_closed_and_the_gauge_returns_to_baseline(
    fake_llm: FakeLLM, tmp_path: Path, uvicorn_args: tuple[str, ...], idle_timeout: str
) -> None:
    """A visitor whose network froze (no data, no FIN, no RST) does not hold a socket."""
    settings = process_settings(fake_llm, tmp_path, ws_idle_timeout=idle_timeout)
    async with app_process(*uvicorn_args, **settings) as port:
        baseline = await open_connections(port)
        with FaultProxy("127.0.0.1", port) as proxy:
            async with chat(proxy.port) as visitor:
                assert (await visitor.ask("Where does she work?")).final["type"] == "done"
                assert await open_connections(port) == baseline + 1
                proxy.freeze()
                started = time.monotonic()
                await gauge_reaches(port, baseline)
                closed_after = time.monotonic() - started
                proxy.cut()
    assert closed_after < 5


@pytest.mark.postgres
async def test_pooled_connections_closed_by_a_database_restart_are_replaced_unnoticed(
    postgres_url: str, fake_llm: FakeLLM
) -> None:
    """The server ends every session (as a restart does) while the app is idle."""
    await asyncio.to_thread(reset_postgres_sync, postgres_url)
    fake_llm.default = Reply(tokens=["Stockholm."])
    settings = app_settings(fake_llm, database_url=postgres_url)
    async with running_app(settings) as port, chat(port) as client:
        before = await client.ask("Where is she based?")
        await asyncio.to_thread(_terminate_other_sessions, postgres_url)
        await asyncio.sleep(0.5)  # the backends exit a moment after being told to
        after = await client.ask("And where does she work?")
    assert before.final["type"] == after.final["type"] == "done"


def _terminate_other_sessions(url: str) -> None:
    import asyncpg

    async def terminate() -> None:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            ended = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert ended >= 1  # the app's pooled connection
        finally:
            await conn.close()

    asyncio.run(terminate())
