import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from devtools.fake_llm import FakeLLM, start_fake_llm

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
SYSTEM_TESTS = Path(__file__).parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/system/ is marked `system`: `-m "not system"` skips it."""
    for item in items:
        if item.path.is_relative_to(SYSTEM_TESTS):
            item.add_marker(pytest.mark.system)


SettingsFactory = Callable[..., Settings]


def reset_postgres_sync(url: str) -> None:
    asyncio.run(_reset_postgres(url))


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every persistence test runs on SQLite and, with TEST_DATABASE_URL set, PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    if not TEST_DATABASE_URL:
        pytest.skip("set TEST_DATABASE_URL=postgresql+asyncpg://... to run PostgreSQL tests")
    await _reset_postgres(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    async with start_fake_llm() as fake:
        yield fake


@pytest.fixture
def make_settings(database_url: str, fake_llm: FakeLLM) -> SettingsFactory:
    """Settings for a test app: the loopback fake provider, quick timeouts and retries."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "openrouter_api_key": "sk-test-secret-key",
            "openrouter_base_url": fake_llm.base_url,
            "database_url": database_url,
            "llm_first_token_timeout": 2.0,
            "llm_chunk_timeout": 2.0,
            "llm_total_timeout": 10.0,
            "llm_max_retries": 2,
            "llm_retry_max_wait": 0.5,
            "shutdown_grace_seconds": 5.0,
            # Guards get their own tests; elsewhere they must not get in the way.
            "rate_limit_questions_per_ip": "1000/minute",
            "rate_limit_questions_per_session": "1000/minute",
            "rate_limit_new_sessions_per_ip": "1000/minute",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return make
