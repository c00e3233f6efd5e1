"""Engine and session factory. SQLite gets the pragmas that make it a sound default.

On PostgreSQL a database that goes away is an outage, not a hang: connecting and every
query have a deadline (`DATABASE_CONNECT_TIMEOUT`, `DATABASE_QUERY_TIMEOUT`), pooled
connections the server closed are replaced before use, and `transaction()`
turns the failure into `storage_unavailable`. Once the database answers again the
next transaction simply works: nothing needs restarting.
"""

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import greenlet_spawn

from app.core.config import Settings
from app.core.errors import StorageUnavailableError
from app.core.logger import get_logger
from app.core.redact import describe

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

logger = get_logger(__name__)

STORAGE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, TimeoutError)


def storage_errors() -> tuple[type[Exception], ...]:
    """STORAGE_ERRORS, and asyncpg's own errors, which reach us unwrapped when connecting
    (e.g. "the database system is starting up" while PostgreSQL restarts). asyncpg is
    loaded by SQLAlchemy only for a PostgreSQL engine; without it, none can be raised."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return STORAGE_ERRORS
    return (*STORAGE_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=5000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        # DATABASE_POOL_SIZE "plus as many again in bursts", all kept once opened: overflow
        # connections would be closed after each burst and opened again at the next (a
        # connection set-up, with most servers a TLS handshake), 5 % of the CPU at 100
        # sessions (bench/PERFORMANCE.md).
        pool_size=2 * settings.database_pool_size,
        max_overflow=0,
        pool_timeout=settings.database_pool_timeout,
        connect_args={
            "timeout": settings.database_connect_timeout,
            "command_timeout": settings.database_query_timeout,
        },
    )
    event.listen(engine.sync_engine, "checkout", _replace_closed)
    return engine


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no pooled connection the server has closed (a restart, a cut).

    asyncpg notices a closed socket by itself, so this costs no round trip, unlike
    `pool_pre_ping` (three on asyncpg, for every transaction). SQLAlchemy answers
    DisconnectionError by opening a fresh connection; a peer that vanished without
    closing is caught by the query deadline instead, and the pool is then renewed.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


type Database = async_sessionmaker[AsyncSession]
"""Where transactions come from: `transaction(database)` opens one."""


def make_database(engine: AsyncEngine) -> Database:
    return async_sessionmaker(engine, expire_on_commit=False)


type Executor = AsyncSession | AsyncConnection
"""What repositories of Core statements run on: a transaction's session or connection."""


@contextlib.asynccontextmanager
async def transaction(database: Database) -> AsyncIterator[AsyncSession]:
    """One short transaction; database failures become `storage_unavailable`."""
    async with _storage_failures(), database.begin() as db:
        yield db


@contextlib.asynccontextmanager
async def core_transaction(database: Database) -> AsyncIterator[AsyncConnection]:
    """`transaction()` on a bare connection, for Core statements only: every question's
    two transactions run here, where the ORM session's bookkeeping cost more CPU than
    the statements themselves (bench/PERFORMANCE.md)."""
    async with _storage_failures(), _engine(database).begin() as connection:
        yield connection


@contextlib.asynccontextmanager
async def _storage_failures() -> AsyncIterator[None]:
    try:
        yield
    except storage_errors() as exc:
        logger.error("storage failed: %s", describe(exc))
        raise StorageUnavailableError() from exc


@contextlib.asynccontextmanager
async def driver_connection(database: Database) -> AsyncIterator[Any]:
    """A pooled connection's own driver connection (asyncpg's on PostgreSQL), outside
    SQLAlchemy and outside any transaction: each statement commits as it ends. For the
    calls every question makes (`PostgresChat`), where SQLAlchemy's layers cost more CPU
    than the call itself; failures become `storage_unavailable` as in `transaction()`.
    Taken with `raw_connection`, without an `AsyncConnection` around it: about 0.1 ms
    less CPU per question (bench/PERFORMANCE.md)."""
    async with _storage_failures():
        pooled = await _engine(database).raw_connection()
        try:
            yield pooled.driver_connection
        except (OSError, TimeoutError, asyncio.CancelledError):
            # It may be half-way through a reply: the pool must not hand it out again.
            await greenlet_spawn(pooled.invalidate)
            raise
        finally:
            await greenlet_spawn(pooled.close)  # back to the pool (or, invalidated, dropped)


def on_postgres(database: Database) -> bool:
    return _engine(database).dialect.name == "postgresql"


def _engine(database: Database) -> AsyncEngine:
    """The engine `make_database` bound the sessions to."""
    engine: AsyncEngine = database.kw["bind"]
    return engine


def dialect_of(db: Executor) -> str:
    """`postgresql` or `sqlite`."""
    if isinstance(db, AsyncConnection):
        return db.dialect.name
    return db.get_bind().dialect.name


def insert_for(dialect: str, table: Table) -> "postgresql.Insert | sqlite.Insert":
    """An INSERT into `table` that can say ON CONFLICT, in `dialect` (`postgresql` or
    `sqlite`). Each dialect's module is imported on first use: a deployment on SQLite
    never loads PostgreSQL's (about 0.04 s of CPU at start-up: bench/PERFORMANCE.md)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
