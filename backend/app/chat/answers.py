"""A finished answer as it is stored, once, however late: by its turn, from the spool, or
as the recovery sweep's placeholder.

Storing an answer settles its question's budget reservation: the counters lose what was
reserved and gain what the answer cost. A question has at most one answer row
(`messages.reply_to` is unique), so storing the same answer twice stores one row and
counts it once; a real answer replaces the sweep's placeholder.
"""

import json
import sys
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from app.chat.budgets import SERVICE_KEY, client_counter
from app.chat.repository import (
    PLACEHOLDER_CODE,
    ConversationRepository,
    MessageRepository,
    PostgresChat,
    UsageRepository,
)
from app.core.errors import StorageUnavailableError
from app.core.logger import get_logger
from app.db.engine import Database, Executor, core_transaction, driver_connection, on_postgres

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """Everything needed to store an answer and settle its question's reservation."""

    conversation_id: uuid.UUID
    client_key: str
    reply_to: int  # the question's message id
    asked_on: date  # the day whose counters hold the reservation
    reserved: int  # tokens the question reserved
    spent: int  # tokens the answer cost (prompt and completion)
    content: str
    created_at: datetime
    finish_reason: str
    source: str | None = None
    model: str | None = None
    error_code: str | None = None
    tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    latency_ms: int | None = None
    first_token_ms: int | None = None

    def to_json(self) -> str:
        values = asdict(self)
        values["conversation_id"] = str(self.conversation_id)
        values["asked_on"] = self.asked_on.isoformat()
        values["created_at"] = self.created_at.isoformat()
        return json.dumps(values, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> "AnswerRecord":
        values: dict[str, Any] = json.loads(line)
        values["conversation_id"] = uuid.UUID(values["conversation_id"])
        values["asked_on"] = date.fromisoformat(values["asked_on"])
        values["created_at"] = datetime.fromisoformat(values["created_at"])
        return cls(**values)


def placeholder(
    conversation_id: uuid.UUID,
    client_key: str,
    question_id: int,
    asked_at: datetime,
    reserved: int,
    at: datetime,
) -> AnswerRecord:
    """The empty answer the recovery sweep stores for a question nobody answered."""
    return AnswerRecord(
        conversation_id=conversation_id,
        client_key=client_key,
        reply_to=question_id,
        asked_on=asked_at.date(),
        reserved=reserved,
        spent=0,
        content="",
        created_at=at,
        finish_reason="interrupted",
        error_code=PLACEHOLDER_CODE,
    )


_NOT_COLUMNS = ("client_key", "asked_on", "reserved", "spent")
_COLUMNS = tuple(f.name for f in fields(AnswerRecord) if f.name not in _NOT_COLUMNS)
_SETTLE_FIELDS = tuple(
    f.name for f in fields(AnswerRecord) if f.name not in ("conversation_id", "client_key")
)


async def save_answer(db: Executor, record: AnswerRecord) -> bool:
    """Store `record` and settle its reservation; False when its question has an answer."""
    columns = {name: getattr(record, name) for name in _COLUMNS}
    messages = MessageRepository(db)
    if await messages.add_answer(role="assistant", **columns) is None:
        return False
    released = record.reserved if await messages.release(record.reply_to) else 0
    change = record.spent - released
    await ConversationRepository(db).add_tokens(record.conversation_id, change, record.created_at)
    if change:
        counters = [SERVICE_KEY, client_counter(record.client_key)]
        await UsageRepository(db).add(record.asked_on, counters, change)
    return True


async def store_record(database: Database, record: AnswerRecord) -> bool:
    """`save_answer` in a transaction of its own (on PostgreSQL, one call of
    `chat_settle`, which does the same); False when its question has an answer already,
    or its conversation is gone (deleted by its owner while it was answered: not an
    outage, so nothing to retry). Database failures raise `StorageUnavailableError`."""
    try:
        if on_postgres(database):
            async with driver_connection(database) as connection:
                values = {name: getattr(record, name) for name in _SETTLE_FIELDS}
                settled = await PostgresChat(connection).settle(
                    conversation=record.conversation_id, client=record.client_key, **values
                )
                return settled is not None
        async with core_transaction(database) as db:
            return await save_answer(db, record)
    except StorageUnavailableError as error:
        if not _conversation_gone(error.__cause__):
            raise
        logger.warning(
            "answer to message %d dropped: conversation %s is gone",
            record.reply_to,
            record.conversation_id,
        )
        return False


def _conversation_gone(cause: BaseException | None) -> bool:
    """Whether the answer's row broke its foreign key: its conversation was deleted."""
    if isinstance(cause, IntegrityError):
        return True
    asyncpg = sys.modules.get("asyncpg")  # loaded only with a PostgreSQL engine
    return asyncpg is not None and isinstance(cause, asyncpg.ForeignKeyViolationError)
