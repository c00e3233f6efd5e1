"""Alembic environment. The app passes its own connection in; the CLI builds one from settings."""

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from app.core.config import load_settings
from app.db import tables  # noqa: F401  (registers the tables on Base.metadata)
from app.db.base import Base, UTCDateTime
from app.db.engine import create_engine

config = context.config


def render_item(kind: str, item: Any, autogen: AutogenContext) -> str | bool:
    """Autogenerate writes UTCDateTime as the plain column type it stores."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    engine = create_engine(load_settings())
    async with engine.begin() as connection:
        await connection.run_sync(run_with)
    await engine.dispose()


if (given := config.attributes.get("connection")) is not None:
    run_with(given)
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)
    asyncio.run(run_from_settings())
