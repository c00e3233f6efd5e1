"""The owner's and operator's SQL: listing, transcripts, deletes and usage statistics.

Like every repository it flushes and never commits; the caller owns the transaction.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    ColumnElement,
    Date,
    and_,
    cast,
    delete,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.db.tables import Conversation, Lead, Message, OutboxMessage

PREVIEW_CHARS = 120
SEARCH_WORDS = 8  # more words than this in a search narrow it no further


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
    # The dashboard's additions: which kinds of answer the conversation got.
    answered_by_model: bool = False
    answered_by_excerpts: bool = False
    lead_count: int = 0


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
        self,
        window: Window,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None = None,
        search: str | None = None,
        *,
        has_lead: bool | None = None,
    ) -> list[ConversationRow]:
        """Newest `updated_at` first (then id), starting after the keyset `after`; with
        `search`, only conversations with a question or answer that `mentions` it; with
        `has_lead`, only those with (or without) a lead."""
        first_question = (
            select(func.substr(Message.content, 1, PREVIEW_CHARS + 1))
            .where(Message.conversation_id == Conversation.id, Message.role == "user")
            .order_by(Message.id)
            .limit(1)
            .correlate(Conversation)
            .scalar_subquery()
        )
        leads = select(func.count()).where(Lead.conversation_id == Conversation.id)
        lead_count = leads.correlate(Conversation).scalar_subquery()
        query = select(
            Conversation.id,
            Conversation.created_at,
            Conversation.updated_at,
            Conversation.question_count,
            Conversation.tokens_used,
            first_question,
            _answered_by("model"),  # the dashboard's additions
            _answered_by("resume_excerpt"),
            lead_count,
        ).where(*_within(Conversation.updated_at, window))
        if search is not None and search.strip():
            query = query.where(self.mentions(search))
        if has_lead is not None:
            with_lead = exists().where(Lead.conversation_id == Conversation.id)
            query = query.where(with_lead if has_lead else ~with_lead)
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
        """Every message of the conversation, oldest first, including failed answers; an
        answer stored late (from the spool, by the sweep) right after its question."""
        rows = await self.session.scalars(
            select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
        return sorted(rows.all(), key=lambda m: (m.reply_to or m.id, m.id))

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
            leads = select(Lead.id).where(Lead.conversation_id.in_(deleted))
            outbox = OutboxMessage.lead_id.in_(leads)
            await self.session.execute(delete(OutboxMessage).where(outbox))
            await self.session.execute(delete(Lead).where(Lead.conversation_id.in_(deleted)))
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

    def mentions(self, search: str) -> ColumnElement[bool]:
        """Some message of the conversation contains the search's words (all of them).

        PostgreSQL: full-text search with the `english` configuration, so words match
        their other forms ("projects" finds "project") and stop words are ignored; the
        expression is the one migration 0005 indexes (GIN).
        SQLite: each word as a case-insensitive (ASCII) substring, `%` and `_` taken
        literally.
        """
        words = search.replace("\x00", " ").split()[:SEARCH_WORDS]  # no text holds NUL
        condition: ColumnElement[bool]
        if self.session.get_bind().dialect.name == "postgresql":
            config: ColumnElement[str] = literal_column("'english'::regconfig")
            vector = func.to_tsvector(config, Message.content)
            condition = vector.bool_op("@@")(func.plainto_tsquery(config, " ".join(words)))
        else:
            condition = and_(
                *(Message.content.like(f"%{_escape_like(word)}%", escape="\\") for word in words)
            )
        return exists().where(Message.conversation_id == Conversation.id, condition)

    def _utc_day(self, column: InstrumentedAttribute[datetime]) -> ColumnElement[date]:
        if self.session.get_bind().dialect.name == "postgresql":
            return cast(func.timezone("UTC", column), Date)
        return func.date(column, type_=Date)  # SQLite stores UTC as text


def _answered_by(source: str) -> ColumnElement[bool]:
    """A subquery run for each listed row (an index lookup): PostgreSQL would run an
    EXISTS here as one scan of every message, whatever the LIMIT."""
    answer = (
        select(true())
        .where(Message.conversation_id == Conversation.id, Message.source == source)
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    return func.coalesce(answer, false())


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _within(column: InstrumentedAttribute[datetime], window: Window) -> list[ColumnElement[bool]]:
    conditions = []
    if window.start is not None:
        conditions.append(column >= window.start)
    if window.end is not None:
        conditions.append(column < window.end)
    return conditions
