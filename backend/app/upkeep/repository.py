"""The SQL that finds questions whose answer never arrived (the process was killed)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.tables import Conversation, Message

# Any fixed number: instances that sweep at the same moment take turns on it.
_SWEEP_LOCK = 7_262_810


@dataclass(frozen=True, slots=True)
class Unanswered:
    message: Message
    client_key: str


class RecoveryRepository:
    def __init__(self, db: AsyncSession) -> None:
        self._db = db

    async def take_sweep_lock(self) -> bool:
        """On PostgreSQL, one instance sweeps at a time (until the transaction ends)."""
        if self._db.get_bind().dialect.name != "postgresql":
            return True
        taken = await self._db.scalar(text(f"SELECT pg_try_advisory_xact_lock({_SWEEP_LOCK})"))
        return bool(taken)

    async def unanswered(self, since: datetime, before: datetime, limit: int) -> list[Unanswered]:
        """Questions asked in [since, before) with no answer, wherever they sit."""
        answer = aliased(Message)
        answered = exists().where(answer.reply_to == Message.id)
        rows = await self._db.execute(
            select(Message, Conversation.client_key)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Message.role == "user",
                Message.created_at >= since,
                Message.created_at < before,
                ~answered,
            )
            .order_by(Message.id)
            .limit(limit)
        )
        return [Unanswered(message, client_key or "") for message, client_key in rows.all()]
