"""Answers cut off by a killed process (SIGKILL, a crash, a lost machine) are marked.

A question whose answer never came stays the last message of its conversation. Once it
is older than the longest a turn can legitimately take (`LLM_TOTAL_TIMEOUT` plus the
shutdown grace and a margin), no instance can still be answering it, so an empty
answer with finish reason `interrupted` is stored after it: the transcript says what
happened and the visitor's next question starts cleanly. Each instance sweeps at
start-up and then every half cutoff; on PostgreSQL an advisory lock keeps two
instances from marking the same question.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from app.core.errors import StorageUnavailableError
from app.core.logger import get_logger
from app.core.tasks import running_in_background
from app.db.base import utcnow
from app.db.engine import Database, transaction
from app.upkeep.repository import RecoveryRepository

logger = get_logger(__name__)

SWEEP_BATCH = 200
LOOK_BACK = timedelta(days=7)
MARGIN_SECONDS = 10.0


async def mark_interrupted(
    database: Database, cutoff_seconds: float, now: datetime | None = None
) -> int:
    """Mark unanswered questions older than `cutoff_seconds`; returns how many."""
    before = (now or utcnow()) - timedelta(seconds=cutoff_seconds)
    marked = 0
    while True:
        async with transaction(database) as db:
            repository = RecoveryRepository(db)
            if not await repository.take_sweep_lock():
                return marked
            questions = await repository.unanswered(before - LOOK_BACK, before, SWEEP_BATCH)
            for question in questions:
                at = question.created_at + timedelta(microseconds=1)
                await repository.mark_interrupted(question.conversation_id, at)
        marked += len(questions)
        if len(questions) < SWEEP_BATCH:
            return marked


@contextlib.asynccontextmanager
async def scheduled_recovery(database: Database, cutoff_seconds: float) -> AsyncIterator[None]:
    """Sweep at start-up, then every half cutoff, for as long as the block runs."""
    async with running_in_background(_sweep_forever(database, cutoff_seconds), name="recovery"):
        yield


async def _sweep_forever(database: Database, cutoff: float) -> None:
    while True:
        try:
            marked = await mark_interrupted(database, cutoff)
        except StorageUnavailableError:
            logger.warning("recovery: the database is unavailable; trying again later")
        else:
            if marked:
                logger.warning("recovery: marked %d unfinished answer(s) as interrupted", marked)
        await asyncio.sleep(max(1.0, cutoff / 2))


def cutoff_seconds(total_timeout: float, shutdown_grace: float) -> float:
    """How old an unanswered question must be before nothing can still be answering it."""
    return total_timeout + shutdown_grace + MARGIN_SECONDS
