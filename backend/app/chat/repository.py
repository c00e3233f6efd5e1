"""All SQL of the chat lives here. Repositories flush; the caller owns the transaction.

These run for every question, so they are Core statements on the tables (no ORM unit of
work or identity map), built once with bind parameters, and each does as much as one
round trip can: counting a question also returns what the conversation and today's
counters have spent, for the budgets.
"""

import functools
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Executable, ScalarSelect, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Conversation, Message, UsageCounter

CONVERSATIONS = cast(Table, Conversation.__table__)
MESSAGES = cast(Table, Message.__table__)
USAGE = cast(Table, UsageCounter.__table__)
CounterKey = tuple[str, str]  # (scope, key) of a daily usage counter


@dataclass(frozen=True, slots=True)
class Spent:
    """What was spent before this question: by the conversation, and today by the counters."""

    questions: int
    session_tokens: int
    today: dict[CounterKey, int]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    role: str
    content: str
    tokens: int | None
    created_at: datetime
    source: str | None = None  # an answer's: "model" or "resume_excerpt"


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, conversation_id: uuid.UUID) -> bool:
        found = await self.session.scalar(_EXISTS, {"conversation": conversation_id})
        return found is not None

    async def count_question(
        self, conversation_id: uuid.UUID, at: datetime, day: date, counters: list[CounterKey]
    ) -> Spent | None:
        """Add one question to a stored conversation; None when there is no such row."""
        params = {"conversation": conversation_id, "now": at} | _counter_params(day, counters)
        result = await self.session.execute(_count_question(len(counters)), params)
        row = result.first()
        if row is None:
            return None
        return Spent(row[0] - 1, row[1], _by_counter(counters, row[2:]))

    async def create(
        self,
        conversation_id: uuid.UUID,
        client_key: str,
        at: datetime,
        day: date,
        counters: list[CounterKey],
    ) -> Spent:
        """Store a new conversation with its first question counted."""
        params = {"conversation": conversation_id, "client": client_key, "now": at}
        result = await self.session.execute(
            _create(len(counters)), params | _counter_params(day, counters)
        )
        return Spent(0, 0, _by_counter(counters, result.one()))

    async def add_tokens(self, conversation_id: uuid.UUID, tokens: int, at: datetime) -> None:
        await self.session.execute(
            _ADD_TOKENS, {"conversation": conversation_id, "added": tokens, "now": at}
        )


class MessageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, **values: Any) -> None:
        """Store one message; `values` are columns of `messages`."""
        await self.session.execute(_INSERT_MESSAGE, values)

    async def list_recent(self, conversation_id: uuid.UUID, limit: int) -> list[StoredMessage]:
        """The newest `limit` messages with text, oldest first."""
        rows = await self.session.execute(_recent(limit), {"conversation": conversation_id})
        return [StoredMessage(*row) for row in reversed(rows.all())]


class UsageRepository:
    """Daily token counters, added to atomically so concurrent instances agree."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, day: date, keys: list[CounterKey], tokens: int) -> None:
        dialect = self.session.get_bind().dialect.name
        params = {"added": tokens} | _counter_params(day, keys)
        await self.session.execute(_add_usage(dialect, len(keys)), params)


# The statements are built once: building and hashing them costs more than running them.

_EXISTS = select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.id == bindparam("conversation"))
_INSERT_MESSAGE = insert(MESSAGES)
_ADD_TOKENS = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id == bindparam("conversation"))
    .values(
        tokens_used=CONVERSATIONS.c.tokens_used + bindparam("added"), updated_at=bindparam("now")
    )
)


def _counter_params(day: date, counters: list[CounterKey]) -> dict[str, Any]:
    params: dict[str, Any] = {"on_day": day}
    for index, (scope, key) in enumerate(counters):
        params[f"scope_{index}"], params[f"key_{index}"] = scope, key
    return params


def _tokens_on(counters: int) -> list[ScalarSelect[Any]]:
    """One scalar subquery per counter: its tokens on `day`, NULL when it has none yet."""
    usage = USAGE.c
    return [
        select(usage.tokens)
        .where(
            usage.scope == bindparam(f"scope_{index}"),
            usage.key == bindparam(f"key_{index}"),
            usage.day == bindparam("on_day"),
        )
        .scalar_subquery()
        for index in range(counters)
    ]


def _by_counter(counters: list[CounterKey], tokens: Any) -> dict[CounterKey, int]:
    return {counter: spent or 0 for counter, spent in zip(counters, tokens, strict=True)}


@functools.cache
def _count_question(counters: int) -> Executable:
    table = CONVERSATIONS.c
    return (
        update(CONVERSATIONS)
        .where(table.id == bindparam("conversation"))
        .values(question_count=table.question_count + 1, updated_at=bindparam("now"))
        .returning(table.question_count, table.tokens_used, *_tokens_on(counters))
    )


@functools.cache
def _create(counters: int) -> Executable:
    return (
        insert(CONVERSATIONS)
        .values(
            id=bindparam("conversation"),
            client_key=bindparam("client"),
            question_count=1,
            tokens_used=0,
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
        )
        .returning(*_tokens_on(counters))
    )


@functools.cache
def _recent(limit: int) -> Executable:
    table = MESSAGES.c
    return (
        select(table.role, table.content, table.tokens, table.created_at, table.source)
        .where(table.conversation_id == bindparam("conversation"), table.content != "")
        .order_by(table.id.desc())
        .limit(limit)
    )


@functools.cache
def _add_usage(dialect: str, counters: int) -> Executable:
    insert_into = pg_insert if dialect == "postgresql" else sqlite_insert
    rows: list[dict[str, Any]] = [
        {
            "scope": bindparam(f"scope_{index}"),
            "key": bindparam(f"key_{index}"),
            "day": bindparam("on_day"),
            "tokens": bindparam("added"),
        }
        for index in range(counters)
    ]
    statement = insert_into(USAGE).values(rows)
    return statement.on_conflict_do_update(
        index_elements=["scope", "key", "day"],
        set_={"tokens": USAGE.c.tokens + statement.excluded.tokens},
    )
