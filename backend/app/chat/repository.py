"""All SQL of the chat lives here. Repositories flush; the caller owns the transaction.

These run for every question, so they are Core statements on the tables (no ORM unit of
work or identity map), built once with bind parameters, and each does as much as one
round trip can: counting a question and reserving its tokens also returns what the
conversation and today's counters held before, for the budgets. Those UPDATEs lock the
conversation's and the counters' rows until the transaction ends, so concurrent
questions are checked one after the other, each seeing the others' reservations. Row
locks are always taken in one order (question, conversation, counters) so that no two
transactions wait for each other.
"""

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, case, insert, select, update

from app.db.engine import Executor, dialect_of, insert_for
from app.db.tables import Conversation, Message, UsageCounter

CONVERSATIONS = cast(Table, Conversation.__table__)
MESSAGES = cast(Table, Message.__table__)
USAGE = cast(Table, UsageCounter.__table__)
CounterKey = tuple[str, str]  # (scope, key) of a daily usage counter


@dataclass(frozen=True, slots=True)
class Spent:
    """What the conversation had spent before this question (today's counters are read
    by `UsageRepository.reserve`)."""

    questions: int
    session_tokens: int


@dataclass(frozen=True, slots=True)
class StoredMessage:
    role: str
    content: str
    tokens: int | None
    created_at: datetime
    source: str | None = None  # an answer's: "model" or "resume_excerpt"


class ConversationRepository:
    def __init__(self, session: Executor) -> None:
        self.session = session

    async def exists(self, conversation_id: uuid.UUID) -> bool:
        found = await self.session.scalar(_EXISTS, {"conversation": conversation_id})
        return found is not None

    async def count_question(
        self, conversation_id: uuid.UUID, at: datetime, reserve: int
    ) -> Spent | None:
        """Add one question and its reservation to a stored conversation; None when there is
        no such row. The row stays locked until the transaction ends, so questions of one
        conversation are checked one after the other; `Spent` is what came before."""
        params = {"conversation": conversation_id, "now": at, "reserve": reserve}
        row = (await self.session.execute(_COUNT_QUESTION, params)).first()
        if row is None:
            return None
        return Spent(row[0] - 1, row[1] - reserve)

    async def create(
        self, conversation_id: uuid.UUID, client_key: str, at: datetime, reserve: int
    ) -> Spent:
        """Store a new conversation with its first question counted and reserved."""
        params = {"conversation": conversation_id, "client": client_key, "now": at}
        await self.session.execute(_CREATE, params | {"reserve": reserve})
        return Spent(0, 0)

    async def add_tokens(self, conversation_id: uuid.UUID, tokens: int, at: datetime) -> None:
        await self.session.execute(
            _ADD_TOKENS, {"conversation": conversation_id, "added": tokens, "now": at}
        )


class MessageRepository:
    def __init__(self, session: Executor) -> None:
        self.session = session

    async def add(self, **values: Any) -> int:
        """Store one message; `values` are columns of `messages`. Returns its id."""
        return cast(int, await self.session.scalar(_INSERT_MESSAGE, values))

    async def add_answer(self, **values: Any) -> int | None:
        """Store the answer to question `reply_to`: in place of a placeholder the recovery
        sweep stored, but never over a real answer (then None: it is stored already)."""
        dialect = dialect_of(self.session)
        inserted: int | None = await self.session.scalar(_insert_answer(dialect), values)
        return inserted

    async def release(self, question_id: int) -> bool:
        """Clear the question's budget reservation; False when it was cleared already.

        (The caller knows how much was reserved: RETURNING only gives the new value.)"""
        released = await self.session.scalar(_RELEASE, {"question": question_id})
        return released is not None

    async def list_recent(self, conversation_id: uuid.UUID, limit: int) -> list[StoredMessage]:
        """The newest `limit` messages with text, oldest first; an answer stored late (from
        the spool, by the sweep) right after its question."""
        rows = await self.session.execute(_recent(limit), {"conversation": conversation_id})
        return _in_turns(rows.all())


class UsageRepository:
    """Daily token counters, added to atomically so concurrent instances agree."""

    def __init__(self, session: Executor) -> None:
        self.session = session

    async def add(self, day: date, keys: list[CounterKey], tokens: int) -> None:
        dialect = dialect_of(self.session)
        params = {"added": tokens} | _counter_params(day, keys)
        await self.session.execute(_add_usage(dialect, len(keys)), params)

    async def reserve(
        self, day: date, keys: list[CounterKey], tokens: int
    ) -> dict[CounterKey, int]:
        """Add `tokens` to the counters; what each held before. The counters' rows stay
        locked until the transaction ends, so concurrent questions are checked in turn."""
        dialect = dialect_of(self.session)
        params = {"added": tokens} | _counter_params(day, keys)
        rows = await self.session.execute(_reserve_usage(dialect, len(keys)), params)
        return {(scope, key): total - tokens for scope, key, total in rows.all()}


@dataclass(frozen=True, slots=True)
class Asked:
    """What `PostgresChat.ask` did: the question's id, or None when a budget refused it
    (nothing stored), and what the budgets read before it."""

    question_id: int | None
    spent: Spent
    client_today: int
    today: int


class PostgresChat:
    """A question, and an answer, as one call each on PostgreSQL: the functions of
    migration 0009, which do what the repositories above do in a transaction (they say
    how). Each call is a transaction of its own, so the day's counter rows, which every
    question and answer updates, stay locked only while PostgreSQL runs it, and the
    app makes one round trip where the transaction made five or six.

    `connection` is asyncpg's, outside any transaction (`driver_connection`)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def list_recent(self, conversation_id: uuid.UUID, limit: int) -> list[StoredMessage]:
        """`MessageRepository.list_recent`."""
        return _in_turns(await self.connection.fetch(_PG_RECENT, conversation_id, limit))

    async def ask(self, **values: Any) -> Asked:
        """Check the budgets, store the question and reserve its tokens (`chat_ask`)."""
        row = await self.connection.fetchrow(_PG_ASK, *(values[name] for name in _ASK_ARGS))
        question_id, questions, session_tokens, client_today, today = row
        return Asked(question_id, Spent(questions, session_tokens), client_today, today)

    async def settle(self, **values: Any) -> int | None:
        """Store an answer and settle its question's reservation (`chat_settle`); None
        when its question has an answer already."""
        args = (values[name] for name in (*_SETTLE_ARGS, *_ANSWER_COLUMNS))
        settled: int | None = await self.connection.fetchval(_PG_SETTLE, *args)
        return settled


def _in_turns(rows: Sequence[Sequence[Any]]) -> list[StoredMessage]:
    """Rows of (role, content, tokens, created_at, source, id, reply_to), newest first,
    as messages oldest first, each answer right after its question."""
    in_turns = sorted(rows, key=lambda row: (row[6] or row[5], row[5]))
    return [StoredMessage(*row[:5]) for row in in_turns]


def _pg_call(function: str, arguments: tuple[str, ...]) -> str:
    """`SELECT * FROM function(p_a => $1, p_b => $2, ...)`, from the constants below."""
    named = ", ".join(f"p_{name} => ${number}" for number, name in enumerate(arguments, 1))
    return f"SELECT * FROM {function}({named})"  # noqa: S608 (no outside text in it)


_PG_RECENT = """
SELECT role, content, tokens, created_at, source, id, reply_to FROM messages
WHERE conversation_id = $1 AND content <> '' ORDER BY id DESC LIMIT $2
"""
_ASK_ARGS = (
    "conversation",
    "client",
    "now",
    "day",
    "content",
    "tokens",
    "reserve",
    "max_questions",
    "per_session",
    "per_client",
    "per_day",
)
_PG_ASK = _pg_call("chat_ask", _ASK_ARGS)


# The statements are built once: building and hashing them costs more than running them.

_EXISTS = select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.id == bindparam("conversation"))
_INSERT_MESSAGE = insert(MESSAGES).returning(MESSAGES.c.id)
_RELEASE = (
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("question"), MESSAGES.c.reserved_tokens.is_not(None))
    .values(reserved_tokens=None)
    .returning(MESSAGES.c.id)
)
_ADD_TOKENS = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id == bindparam("conversation"))
    .values(
        tokens_used=CONVERSATIONS.c.tokens_used + bindparam("added"),
        # A late answer (from the spool, or the sweep's placeholder) moves it no earlier.
        updated_at=case(
            (CONVERSATIONS.c.updated_at < bindparam("now"), bindparam("now")),
            else_=CONVERSATIONS.c.updated_at,
        ),
    )
)


def _counter_params(day: date, counters: list[CounterKey]) -> dict[str, Any]:
    params: dict[str, Any] = {"on_day": day}
    for index, (scope, key) in enumerate(counters):
        params[f"scope_{index}"], params[f"key_{index}"] = scope, key
    return params


_COUNT_QUESTION = (
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id == bindparam("conversation"))
    .values(
        question_count=CONVERSATIONS.c.question_count + 1,
        tokens_used=CONVERSATIONS.c.tokens_used + bindparam("reserve"),
        updated_at=bindparam("now"),
    )
    .returning(CONVERSATIONS.c.question_count, CONVERSATIONS.c.tokens_used)
)
_CREATE = insert(CONVERSATIONS).values(
    id=bindparam("conversation"),
    client_key=bindparam("client"),
    question_count=1,
    tokens_used=bindparam("reserve"),
    created_at=bindparam("now"),
    updated_at=bindparam("now"),
)
# What a late answer may overwrite: the placeholder of the recovery sweep.
PLACEHOLDER_CODE = "answer_interrupted"
_ANSWER_COLUMNS = (
    "content",
    "source",
    "tokens",
    "created_at",
    "model",
    "finish_reason",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "latency_ms",
    "first_token_ms",
)
# `chat_settle`'s arguments, by name: the answer's columns and what settles its reservation.
_SETTLE_ARGS = ("conversation", "client", "reply_to", "asked_on", "reserved", "spent")
_PG_SETTLE = _pg_call("chat_settle", (*_SETTLE_ARGS, *_ANSWER_COLUMNS))


@functools.cache
def _insert_answer(dialect: str) -> Executable:
    statement = insert_for(dialect, MESSAGES)
    return statement.on_conflict_do_update(
        index_elements=["reply_to"],
        set_={name: statement.excluded[name] for name in _ANSWER_COLUMNS},
        where=MESSAGES.c.error_code == PLACEHOLDER_CODE,
    ).returning(MESSAGES.c.id)


@functools.cache
def _recent(limit: int) -> Executable:
    table = MESSAGES.c
    return (
        select(
            table.role,
            table.content,
            table.tokens,
            table.created_at,
            table.source,
            table.id,
            table.reply_to,
        )
        .where(table.conversation_id == bindparam("conversation"), table.content != "")
        .order_by(table.id.desc())
        .limit(limit)
    )


@functools.cache
def _add_usage(dialect: str, counters: int) -> Executable:
    rows: list[dict[str, Any]] = [
        {
            "scope": bindparam(f"scope_{index}"),
            "key": bindparam(f"key_{index}"),
            "day": bindparam("on_day"),
            "tokens": bindparam("added"),
        }
        for index in range(counters)
    ]
    statement = insert_for(dialect, USAGE).values(rows)
    return statement.on_conflict_do_update(
        index_elements=["scope", "key", "day"],
        set_={"tokens": USAGE.c.tokens + statement.excluded.tokens},
    )


@functools.cache
def _reserve_usage(dialect: str, counters: int) -> Executable:
    usage = USAGE.c
    upsert = cast(Any, _add_usage(dialect, counters))
    return cast(Executable, upsert.returning(usage.scope, usage.key, usage.tokens))
