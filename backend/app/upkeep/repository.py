"""The SQL that finds questions whose answer never arrived (the process was killed)."""

import uuid
from datetime import datetime

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.tables import Message

# Any fixed number: instances that sweep at the same moment take turns on it.
_SWEEP_LOCK = 7_262_810


class RecoveryRepository:
    def __init__(self, db: AsyncSession) -> None:
        self._db = db

    async def take_sweep_lock(self) -> bool:
        """On PostgreSQL, one instance sweeps at a time (until the transaction ends)."""
        if self._db.get_bind().dialect.name != "postgresql":
            return True
        taken = await self._db.scalar(text(f"SELECT pg_try_advisory_xact_lock({_SWEEP_LOCK})"))
        return bool(taken)

    async def unanswered(self, since: datetime, before: datetime, limit: int) -> list[Message]:
        """Questions asked in [since, before) that are still the last word of their conversation."""
        later = aliased(Message)
        newer = exists().where(
            later.conversation_id == Message.conversation_id, later.id > Message.id
        )
        rows = await self._db.scalars(
            select(Message)
            .where(
                Message.role == "user",
                Message.created_at >= since,
                Message.created_at < before,
                ~newer,
            )
            .order_by(Message.id)
            .limit(limit)
        )
        return list(rows)

    async def mark_interrupted(self, conversation_id: uuid.UUID, at: datetime) -> None:
        """Store an empty answer that says it was interrupted."""
        self._db.add(
            Message(
                conversation_id=conversation_id,
                role="assistant",
                content="",
                created_at=at,
                finish_reason="interrupted",
                error_code="answer_interrupted",
                tokens=0,
                prompt_tokens=0,
                completion_tokens=0,
            )
        )
        await self._db.flush()
