"""Passwords stay out of start-up errors, and database failures say what failed."""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from sqlalchemy import text
from starlette.types import Message, Receive, Scope, Send

from app.api.middleware import StartupErrorReporter
from app.core.config import Settings, load_settings
from app.core.errors import StartupError, StorageUnavailableError
from app.core.redact import redact
from app.db.engine import create_engine, make_database, transaction

BAD_SETTINGS = {
    "database_url": [
        "postgresql://owner:hunter2@db.example/chat",  # +asyncpg missing
        "postgresql+asyncpg://owner:hunter2@db.example:port/chat",  # port not a number
        "postgresql+asyncpg://owner:hunter2@[::1/chat",  # unclosed IPv6 address
        "mysql://owner:hun@ter2@db.example/chat",  # an `@` in the password
    ],
    "openrouter_base_url": ["ftp://owner:hunter2@llm.example/v1"],
    "notify_webhook_url": ["hooks.example/x?token=hunter2"],
    "public_base_url": ["chat.example?password=hunter2"],
}


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in BAD_SETTINGS.items() for value in values],
)
def test_invalid_urls_are_named_without_their_passwords(name: str, value: str) -> None:
    with pytest.raises(StartupError) as refused:
        load_settings(_env_file=None, **{name: value})
    message = refused.value.message
    assert message.startswith(f"Invalid setting {name.upper()}: "), message
    assert "ter2" not in message, message  # nor its end, after an `@` in a password
    assert "***" in message, message
    assert refused.value.__cause__ is None  # the validation error's text holds the value


def test_redact_keeps_everything_but_the_secret() -> None:
    assert redact("redis://:pw@h:6379/0 and https://u:p@x.example/a?b=1") == (
        "redis://:***@h:6379/0 and https://u:***@x.example/a?b=1"
    )
    assert redact("postgresql+asyncpg://u@/db?host=/run&password=pw") == (
        "postgresql+asyncpg://u@/db?host=/run&password=***"
    )
    assert redact("https://site.example/path?q=1") == "https://site.example/path?q=1"


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word, like a hung database."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


@contextmanager
def captured(name: str) -> Iterator[list[str]]:
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


async def test_a_database_that_times_out_is_logged_with_its_reason() -> None:
    async with silent_server() as port:
        settings = Settings(
            _env_file=None,
            database_url=f"postgresql+asyncpg://owner:hunter2@127.0.0.1:{port}/chat",
            database_connect_timeout=0.3,
        )
        engine = create_engine(settings)
        try:
            with captured("app.db.engine") as lines, pytest.raises(StorageUnavailableError):
                async with transaction(make_database(engine)) as db:
                    await db.execute(text("SELECT 1"))
        finally:
            await engine.dispose()
    print(lines)
    assert len(lines) == 1
    reason = lines[0].removeprefix("storage failed: ")
    assert reason.strip(), lines  # it used to read "storage failed: " and nothing more
    assert "TimeoutError" in reason
    assert "hunter2" not in lines[0]


async def test_a_start_up_failure_is_reported_without_its_password() -> None:
    """Whatever raised it, the one line uvicorn prints hides a URL's password."""

    async def failing(_scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        try:
            raise StartupError("Redis at redis://:hunter2@cache.example:6379/0 did not answer")
        except StartupError:
            await send({"type": "lifespan.startup.failed", "message": "traceback"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    await StartupErrorReporter(failing)({"type": "lifespan"}, receive, send)
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "Cannot start: Redis at redis://:***@cache.example:6379/0 did not answer",
        }
    ]
