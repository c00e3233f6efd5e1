"""Apply Alembic migrations from inside the app, at start-up, only when the schema is behind.

Most starts find the schema current. Reading the `alembic_version` table and the
revision lines of migrations/versions/*.py tells so in a millisecond, without importing
Alembic (a second of a cold start, issue 18); only a database that is behind, or a check
that cannot decide, runs Alembic's upgrade.
"""

import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import BACKEND_DIR
from app.core.logger import get_logger

logger = get_logger(__name__)

VERSIONS_DIR = BACKEND_DIR / "migrations" / "versions"
# Any constant will do: it only has to be the same in every instance of this app.
_MIGRATION_LOCK_ID = 7_301_922_114
_CONNECT_TIMEOUT_SECONDS = 10
_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def script_heads(versions: Path = VERSIONS_DIR) -> set[str] | None:
    """The head revisions of the migration scripts, read from their text; None if unsure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions.glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None  # not a shape this reader knows: let Alembic decide
        revisions.add(revision[1])
        parents.update(_QUOTED.findall(down[1]))  # None, "0004" or ("0005", "0006")
    heads = revisions - parents
    return heads or None


async def schema_is_current(engine: AsyncEngine) -> bool:
    """True when the database is at the scripts' head(s); False when behind or unsure."""
    heads = script_heads()
    if heads is None:
        return False
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            current = {row[0] for row in rows}
    except SQLAlchemyError:
        return False  # no alembic_version table yet: a new database
    return current == heads


async def upgrade_database(engine: AsyncEngine) -> None:
    """Upgrade to head unless the schema is current; on PostgreSQL, instances starting
    together take turns.

    On PostgreSQL the upgrade gets a connection of its own, without the app's
    `DATABASE_QUERY_TIMEOUT`: building an index, or waiting for another instance's
    upgrade, may rightly take longer than a chat query.
    """
    if await schema_is_current(engine):
        return
    logger.info("database schema behind the migrations: upgrading")
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


def _upgrade(connection: Connection) -> None:
    from alembic import command  # loaded only when the schema is behind
    from alembic.config import Config

    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
