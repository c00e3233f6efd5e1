"""Answers cut off by a killed process (SIGKILL, a crash, a lost machine) are marked.

First the answers spooled while the database was away are stored. Then every question
with no answer row (wherever it sits in its conversation: the visitor may have asked
again since) that is older than the longest a turn can legitimately take
(`LLM_TOTAL_TIMEOUT`, the shutdown grace, `ANSWER_STORE_RETRY_SECONDS` and a margin)
gets an empty answer with finish reason `interrupted`, which also releases the budget
reservation the question still held. A spooled answer stored later replaces it. Each
instance sweeps at start-up and then every half cutoff; on PostgreSQL an advisory lock
keeps two instances from marking the same question.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from app.chat.answers import placeholder, save_answer
from app.chat.spool import AnswerSpool
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
    database: Database,
    cutoff_seconds: float,
    now: datetime | None = None,
    spool: AnswerSpool | None = None,
) -> int:
    """Store spooled answers, then mark unanswered questions older than `cutoff_seconds`;
    returns how many were marked."""
    if spool is not None:
        await spool.replay(database)
    before = (now or utcnow()) - timedelta(seconds=cutoff_seconds)
    marked = 0
    while True:
        async with transaction(database) as db:
            repository = RecoveryRepository(db)
            if not await repository.take_sweep_lock():
                return marked
            questions = await repository.unanswered(before - LOOK_BACK, before, SWEEP_BATCH)
            for question in questions:
                asked = question.message
                at = asked.created_at + timedelta(microseconds=1)
                reserved = asked.reserved_tokens or 0
                await save_answer(
                    db,
                    placeholder(
                        asked.conversation_id,
                        question.client_key,
                        asked.id,
                        asked.created_at,
                        reserved,
                        at,
                    ),
                )
        marked += len(questions)
        if len(questions) < SWEEP_BATCH:
            return marked


@contextlib.asynccontextmanager
async def scheduled_recovery(
    database: Database, cutoff_seconds: float, spool: AnswerSpool | None = None
) -> AsyncIterator[None]:
    """Sweep at start-up, then every half cutoff, for as long as the block runs."""
    sweeping = _sweep_forever(database, cutoff_seconds, spool)
    async with running_in_background(sweeping, name="recovery"):
        yield


async def _sweep_forever(database: Database, cutoff: float, spool: AnswerSpool | None) -> None:
    while True:
        try:
            marked = await mark_interrupted(database, cutoff, spool=spool)
        except StorageUnavailableError:
            logger.warning("recovery: the database is unavailable; trying again later")
        except OSError:
            logger.exception("recovery: the answer spool cannot be read; trying again later")
        else:
            if marked:
                logger.warning("recovery: marked %d unfinished answer(s) as interrupted", marked)
        await asyncio.sleep(max(1.0, cutoff / 2))


def cutoff_seconds(total_timeout: float, shutdown_grace: float, store_retry: float = 0) -> float:
    """How old an unanswered question must be before nothing can still be answering it."""
    return total_timeout + shutdown_grace + store_retry + MARGIN_SECONDS
