"""NOTIFY_GAPS_DIGEST_HOUR: once a day, at that hour (UTC), the owner is sent the questions
first asked the day before that the resume could not answer, if there were any.

Each instance schedules it; the outbox key (`gaps.digest:<day>`) makes it one notification.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

from app.core.errors import StorageUnavailableError
from app.core.logger import get_logger
from app.core.tasks import running_in_background
from app.db.base import utcnow
from app.db.engine import Database, transaction
from app.leads.notifications import gaps_digest
from app.leads.repository import GapRepository
from app.notify.sender import Outbox

logger = get_logger(__name__)


async def enqueue_digest(database: Database, outbox: Outbox, day: date) -> int:
    """Queue the digest of `day` (UTC); returns how many questions it lists (0: none sent)."""
    start = datetime.combine(day, time(), UTC)
    async with transaction(database) as db:
        gaps = [gap async for gap in GapRepository(db).first_asked(start, start + timedelta(1))]
        if gaps:
            await outbox.enqueue(db, gaps_digest(day, gaps))
    if gaps:
        outbox.wake()
    return len(gaps)


def next_run(now: datetime, hour: int) -> datetime:
    at = datetime.combine(now.date(), time(hour), UTC)
    return at if at > now else at + timedelta(days=1)


async def _digest_daily(database: Database, outbox: Outbox, hour: int) -> None:
    while True:
        now = utcnow()
        at = next_run(now, hour)
        await asyncio.sleep((at - now).total_seconds())
        try:
            listed = await enqueue_digest(database, outbox, at.date() - timedelta(days=1))
        except StorageUnavailableError:
            logger.warning("gaps digest: the database is unavailable; skipped today's")
        else:
            logger.info("gaps digest: %d new unanswered question(s)", listed)


@contextlib.asynccontextmanager
async def scheduled_digest(
    database: Database, outbox: Outbox | None, hour: int | None
) -> AsyncIterator[None]:
    """Send the digest daily for the block; nothing without a channel or an hour."""
    if outbox is None or hour is None:
        yield
        return
    async with running_in_background(_digest_daily(database, outbox, hour), name="gaps-digest"):
        yield
