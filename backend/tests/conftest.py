import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from devtools.fake_llm import FakeLLM, start_fake_llm
from tests.support.fault_proxy import FaultProxy
from tests.support.pg_admin import create_database, drop_database
from tests.support.tls import self_signed

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
# pytest-xdist names its workers gw0, gw1, ...; empty when the tests run in one process.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
SYSTEM_TESTS = Path(__file__).parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/system/ is marked `system`: `-m "not system"` skips it.

    Under pytest-xdist the system tests also share one group, so they run one at a time
    (on one worker) while the other workers take the rest: processes, browsers and the
    soak do not compete with each other for the machine.
    """
    for item in items:
        if item.path.is_relative_to(SYSTEM_TESTS):
            item.add_marker(pytest.mark.system)
            item.add_marker(pytest.mark.xdist_group("system"))


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per core for the whole suite (its processes and browsers need
    the cores), two per core for the inner loop, whose tests mostly wait on loopback
    sockets and timers (`uv run pytest -m "not system"`: 125 s with 4 workers against
    160 s with 2 on this 2-core machine, side by side)."""
    cores = os.cpu_count() or 1
    return cores * 2 if _inner_loop(config) else cores


def _inner_loop(config: pytest.Config) -> bool:
    return bool(config.option.markexpr.split() == ["not", "system"])


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The inner loop, `-m "not system"`, does not even import tests/system/: its imports
    (a browser driver, the OpenAPI schema's analysis) cost seconds in every worker, for
    tests that would all be deselected."""
    if collection_path == SYSTEM_TESTS and _inner_loop(config):
        return True
    return None


SettingsFactory = Callable[..., Settings]


def run_in_thread[T](coroutine: Callable[[], Coroutine[object, object, T]]) -> T:
    """Run `coroutine()` to the end from synchronous code, even under a running loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine()).result()


def reset_postgres_sync(url: str) -> None:
    run_in_thread(lambda: _reset_postgres(url))


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """This process's PostgreSQL database: TEST_DATABASE_URL's, or under pytest-xdist
    `<its name>_<worker>` on the same server, created on first use and dropped at the end
    (tests drop and recreate the public schema, so workers cannot share one).
    """
    if not TEST_DATABASE_URL:
        pytest.skip("set TEST_DATABASE_URL=postgresql+asyncpg://... to run PostgreSQL tests")
    if not XDIST_WORKER:
        yield TEST_DATABASE_URL
        return
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_{XDIST_WORKER}"
    run_in_thread(lambda: create_database(TEST_DATABASE_URL, name, exist_ok=True))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        run_in_thread(lambda: drop_database(TEST_DATABASE_URL, name))


@pytest.fixture
async def postgres_proxy(postgres_url: str) -> AsyncIterator[FaultProxy]:
    """A fault-injecting TCP proxy in front of this process's PostgreSQL, on an empty schema."""
    await asyncio.to_thread(reset_postgres_sync, postgres_url)
    with FaultProxy.in_front_of(postgres_url) as proxy:
        yield proxy


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every persistence test runs on SQLite and, with TEST_DATABASE_URL set, PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    url: str = request.getfixturevalue("postgres_url")
    await _reset_postgres(url)
    return url


@pytest.fixture
def redis_url() -> str:
    """The test Redis (TEST_REDIS_URL); a test that asks for it is skipped without one.
    Tests sharing it keep apart by key prefixes of their own."""
    if not TEST_REDIS_URL:
        pytest.skip("set TEST_REDIS_URL=redis://127.0.0.1:6379/15 to run the Redis tests")
    return TEST_REDIS_URL


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    async with start_fake_llm() as fake:
        yield fake


@pytest.fixture
def make_settings(database_url: str, fake_llm: FakeLLM, tmp_path: Path) -> SettingsFactory:
    """Settings for a test app: the loopback fake provider, quick timeouts and retries."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "openrouter_api_key": "sk-test-secret-key",
            "openrouter_base_url": fake_llm.base_url,
            "database_url": database_url,
            "answer_spool_path": tmp_path / "spool" / "answer-spool.jsonl",
            "llm_first_token_timeout": 2.0,
            "llm_chunk_timeout": 2.0,
            "llm_total_timeout": 10.0,
            "llm_max_retries": 2,
            "llm_retry_max_wait": 0.5,
            "shutdown_grace_seconds": 5.0,
            # Apps start in the test's process: freezing its heap would keep each test's
            # garbage for good (test_gc_freeze.py checks the setting).
            "gc_freeze": False,
            # Guards get their own tests; elsewhere they must not get in the way.
            "rate_limit_questions_per_ip": "1000/minute",
            "rate_limit_questions_per_session": "1000/minute",
            "rate_limit_new_sessions_per_ip": "1000/minute",
            "rate_limit_contacts_per_ip": "1000/minute",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    return self_signed(tmp_path)
