"""The owner's and operator's SQL: listing, transcripts, deletes and usage statistics.

Like every repository it flushes and never commits; the caller owns the transaction.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, Date, and_, cast, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.tables import Conversation, Message

PREVIEW_CHARS = 120


@dataclass(frozen=True)
class Window:
    """`start <= updated_at < end`; either side may be open."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ConversationRow:
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    question_count: int
    tokens_used: int
    first_question: str | None


@dataclass(frozen=True)
class DayUsage:
    day: date
    questions: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class AdminRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_conversations(
        self, window: Window, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> list[ConversationRow]:
        """Newest `updated_at` first (then id), starting after the keyset `after`."""
        first_question = (
            select(func.substr(Message.content, 1, PREVIEW_CHARS + 1))
            .where(Message.conversation_id == Conversation.id, Message.role == "user")
            .order_by(Message.id)
            .limit(1)
            .correlate(Conversation)
            .scalar_subquery()
        )
        query = select(
            Conversation.id,
            Conversation.created_at,
            Conversation.updated_at,
            Conversation.question_count,
            Conversation.tokens_used,
            first_question,
        ).where(*_within(Conversation.updated_at, window))
        if after is not None:
            at, last_id = after
            query = query.where(
                or_(
                    Conversation.updated_at < at,
                    and_(Conversation.updated_at == at, Conversation.id < last_id),
                )
            )
        query = query.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit)
        rows = await self.session.execute(query)
        return [ConversationRow(*row) for row in rows]

    async def get_conversation(self, conversation_id: uuid.UUID) -> Conversation | None:
        return await self.session.get(Conversation, conversation_id)

    async def list_messages(self, conversation_id: uuid.UUID) -> Sequence[Message]:
        """Every message of the conversation, oldest first, including failed answers."""
        rows = await self.session.scalars(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
        return rows.all()

    async def delete_conversations(
        self, ids: Sequence[uuid.UUID], idle_before: datetime | None = None
    ) -> list[uuid.UUID]:
        """Delete these conversations (only those still idle since `idle_before`, if given)
        with their messages; returns the ids that were deleted."""
        if not ids:
            return []
        statement = delete(Conversation).where(Conversation.id.in_(ids))
        if idle_before is not None:
            statement = statement.where(Conversation.updated_at < idle_before)
        deleted = list(await self.session.scalars(statement.returning(Conversation.id)))
        if deleted:
            # The foreign key cascades too; this also covers a database that does not enforce it.
            await self.session.execute(delete(Message).where(Message.conversation_id.in_(deleted)))
        await self.session.flush()
        return deleted

    async def idle_conversation_ids(self, idle_before: datetime, limit: int) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(Conversation.id)
            .where(Conversation.updated_at < idle_before)
            .order_by(Conversation.updated_at)
            .limit(limit)
        )
        return list(rows)

    async def conversations_started_per_day(self, since: datetime) -> dict[date, int]:
        day = self._utc_day(Conversation.created_at)
        rows = await self.session.execute(
            select(day, func.count()).where(Conversation.created_at >= since).group_by(day)
        )
        return dict(rows.all())

    async def usage_per_day(self, since: datetime) -> list[DayUsage]:
        """Questions asked and tokens the answers cost, per UTC day."""
        day = self._utc_day(Message.created_at)
        rows = await self.session.execute(
            select(
                day,
                func.count().filter(Message.role == "user"),
                func.coalesce(func.sum(Message.prompt_tokens), 0),
                func.coalesce(func.sum(Message.completion_tokens), 0),
                func.coalesce(func.sum(Message.cached_tokens), 0),
                func.coalesce(func.sum(Message.cache_write_tokens), 0),
            )
            .where(Message.created_at >= since)
            .group_by(day)
        )
        return [
            DayUsage(on, questions, *(int(tokens or 0) for tokens in sums))
            for on, questions, *sums in rows
        ]

    async def question_counts(self, since: datetime) -> AsyncIterator[tuple[str, int]]:
        """Each distinct question text asked since then, with how often; streamed."""
        rows = await self.session.stream(
            select(Message.content, func.count())
            .where(Message.role == "user", Message.created_at >= since)
            .group_by(Message.content)
        )
        async for content, count in rows:
            yield content, count

    def _utc_day(self, column: InstrumentedAttribute[datetime]) -> ColumnElement[date]:
        if self.session.get_bind().dialect.name == "postgresql":
            return cast(func.timezone("UTC", column), Date)
        return func.date(column, type_=Date)  # SQLite stores UTC as text


def _within(column: InstrumentedAttribute[datetime], window: Window) -> list[ColumnElement[bool]]:
    conditions = []
    if window.start is not None:
        conditions.append(column >= window.start)
    if window.end is not None:
        conditions.append(column < window.end)
    return conditions
