"""Apply Alembic migrations from inside the app, at start-up."""

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import BACKEND_DIR

# Any constant will do: it only has to be the same in every instance of this app.
_MIGRATION_LOCK_ID = 7_301_922_114
_CONNECT_TIMEOUT_SECONDS = 10


def _upgrade(connection: Connection) -> None:
    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_database(engine: AsyncEngine) -> None:
    """Upgrade to head; on PostgreSQL, instances starting together take turns.

    On PostgreSQL the upgrade gets a connection of its own, without the app's
    `DATABASE_QUERY_TIMEOUT`: building an index, or waiting for another instance's
    upgrade, may rightly take longer than a chat query.
    """
    if engine.dialect.name != "postgresql":
        await _upgrade_with(engine)
        return
    migrator = create_async_engine(
        engine.url, poolclass=NullPool, connect_args={"timeout": _CONNECT_TIMEOUT_SECONDS}
    )
    try:
        await _upgrade_with(migrator)
    finally:
        await migrator.dispose()


async def _upgrade_with(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        await connection.run_sync(_upgrade)
