"""RETENTION_DAYS: conversations idle for longer are deleted with their messages, for real."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from app.admin.repository import AdminRepository
from app.core.errors import StorageUnavailableError
from app.core.logger import get_logger
from app.core.tasks import running_in_background
from app.db.base import utcnow
from app.db.engine import Database, transaction

logger = get_logger(__name__)

PURGE_BATCH = 500


async def purge_idle(database: Database, days: int, now: datetime | None = None) -> int:
    """Delete conversations last active more than `days` days ago; returns how many.

    Works in batches, each its own short transaction; a conversation a visitor
    resumes meanwhile is left alone.
    """
    if days < 1:
        raise ValueError("retention needs at least one day")
    cutoff = (now or utcnow()) - timedelta(days=days)
    total = 0
    while True:
        async with transaction(database) as db:
            repository = AdminRepository(db)
            ids = await repository.idle_conversation_ids(cutoff, PURGE_BATCH)
            total += len(await repository.delete_conversations(ids, idle_before=cutoff))
        if len(ids) < PURGE_BATCH:
            return total


async def run_retention(database: Database, days: int, every_hours: float) -> None:
    """Purge now and then every `every_hours` hours, until cancelled."""
    while True:
        try:
            deleted = await purge_idle(database, days)
        except StorageUnavailableError:
            logger.warning("retention: the purge failed; trying again in %g hours", every_hours)
        else:
            logger.info(
                "retention: deleted %d conversations idle for more than %d days", deleted, days
            )
        await asyncio.sleep(every_hours * 3600)


@contextlib.asynccontextmanager
async def scheduled_retention(
    database: Database, days: int, every_hours: float
) -> AsyncIterator[None]:
    """Runs `run_retention` in the background for the block; nothing when `days` is 0."""
    if days == 0:
        yield
        return
    work = run_retention(database, days, every_hours)
    async with running_in_background(work, name="retention"):
        yield
