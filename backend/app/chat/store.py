"""Conversations in the database: questions and answers with what they cost.

Each method is one short transaction, and budgets are checked inside the same
transaction that stores the question and reserves what its answer may cost, so
nothing goes upstream once one is spent, however many questions arrive at once.
"""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from app.chat.answers import AnswerRecord, store_record
from app.chat.budgets import SERVICE_KEY, Budgets, client_counter
from app.chat.prompts import HistoryMessage
from app.chat.protocol import DoneData, HistoryItem, Usage
from app.chat.repository import (
    ConversationRepository,
    MessageRepository,
    PostgresChat,
    StoredMessage,
    UsageRepository,
)
from app.chat.spool import AnswerSpool
from app.chat.turns import Answer, ChatSession, Client
from app.core.errors import StorageUnavailableError
from app.core.logger import get_logger
from app.core.metrics import Metrics
from app.db.base import utcnow
from app.db.engine import Database, core_transaction, driver_connection, on_postgres
from app.llm.client import TokenUsage
from app.llm.tokens import TokenCounter

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class StoredQuestion:
    id: int
    asked_on: date
    reserved: int  # tokens held against the budgets until the answer is stored
    history: list[HistoryMessage]  # the earlier messages


class MessageStore:
    def __init__(
        self,
        database: Database,
        counter: TokenCounter,
        *,
        budgets: Budgets,
        metrics: Metrics,
        history_messages: int,
        model: str,
        spool: AnswerSpool,
        store_retry_seconds: float,
    ) -> None:
        self._database = database
        self._on_postgres = on_postgres(database)
        self._spool = spool
        self._store_retry_seconds = store_retry_seconds
        self._counter = counter
        self._budgets = budgets
        self._metrics = metrics
        self._history_messages = history_messages
        self._model = model

    async def history(self, conversation_id: uuid.UUID) -> list[HistoryItem] | None:
        """The stored conversation's newest messages, or None when there is none."""
        async with core_transaction(self._database) as db:
            found = await ConversationRepository(db).exists(conversation_id)
            rows = await MessageRepository(db).list_recent(conversation_id, self._history_messages)
        if not found:
            return None
        return [
            HistoryItem(
                role=row.role, content=row.content, created_at=row.created_at, source=row.source
            )
            for row in rows
        ]

    async def store_question(
        self,
        chat: ChatSession,
        question: str,
        tokens: int,
        client: Client,
        reserve: Callable[[list[HistoryMessage]], int],
    ) -> StoredQuestion:
        """Check budgets, reserve the question's tokens and store it, in one transaction.

        `reserve(history)` is what the turn may cost at most (its prompt and a longest
        answer). It is added to the conversation and today's counters, which locks their
        rows: concurrent questions are checked one after the other, each against what is
        spent and reserved before it. A refusal rolls it all back.
        """
        if self._on_postgres:
            return await self._ask_postgres(chat, question, tokens, client, reserve)
        now = utcnow()
        counters = [SERVICE_KEY, client_counter(client.key)]
        async with core_transaction(self._database) as db:
            conversations, messages = ConversationRepository(db), MessageRepository(db)
            history = await self._history(chat, messages)
            reserved = reserve(history)
            # Even a new session may be stored already: the contact form can store it first.
            spent = await conversations.count_question(chat.id, now, reserved)
            spent = spent or await conversations.create(chat.id, client.key, now, reserved)
            question_id = await messages.add(
                conversation_id=chat.id,
                role="user",
                content=question,
                tokens=tokens,
                created_at=now,
                reserved_tokens=reserved,
            )
            # Last, so the counters' rows (the service's is every question's) stay locked
            # only for the check and the commit.
            today = await UsageRepository(db).reserve(now.date(), counters, reserved)
            self._budgets.check(
                questions=spent.questions,
                session=spent.session_tokens,
                client_today=today[counters[1]],
                today=today[SERVICE_KEY],
            )
        chat.stored = True
        return StoredQuestion(question_id, now.date(), reserved, history)

    async def _history(
        self, chat: ChatSession, messages: MessageRepository | PostgresChat
    ) -> list[HistoryMessage]:
        """The conversation's latest messages with their token counts (none if it is new)."""
        if not chat.stored:
            return []
        rows = await messages.list_recent(chat.id, self._history_messages)
        return [HistoryMessage(row.role, row.content, self._tokens_of(row)) for row in rows]

    async def _ask_postgres(
        self,
        chat: ChatSession,
        question: str,
        tokens: int,
        client: Client,
        reserve: Callable[[list[HistoryMessage]], int],
    ) -> StoredQuestion:
        """`store_question` on PostgreSQL: the history, then one call (`chat_ask`) that
        checks the budgets, stores the question and reserves its tokens."""
        now = utcnow()
        async with driver_connection(self._database) as connection:
            chat_db = PostgresChat(connection)
            history = await self._history(chat, chat_db)
            reserved = reserve(history)
            budgets = self._budgets
            asked = await chat_db.ask(
                conversation=chat.id,
                client=client.key,
                now=now,
                day=now.date(),
                content=question,
                tokens=tokens,
                reserve=reserved,
                max_questions=budgets.turns_per_session,
                per_session=budgets.per_session,
                per_client=budgets.per_client_per_day,
                per_day=budgets.per_day,
            )
        if asked.question_id is None:  # refused: say which budget is spent
            budgets.check(
                questions=asked.spent.questions,
                session=asked.spent.session_tokens,
                client_today=asked.client_today,
                today=asked.today,
            )
            raise RuntimeError("chat_ask refused a question that the budgets allow")
        chat.stored = True
        return StoredQuestion(asked.question_id, now.date(), reserved, history)

    def _tokens_of(self, row: StoredMessage) -> int:
        return row.tokens if row.tokens is not None else self._counter.count(row.content)

    async def store_answer(
        self,
        chat: ChatSession,
        client: Client,
        answer: Answer,
    ) -> DoneData | None:
        """Store the answer, however it ended; the `done` payload when it ended well.

        A database that fails is retried for `ANSWER_STORE_RETRY_SECONDS`; then the
        answer goes to the spool, to be stored when the database is back. Only when
        even that fails does this raise (`storage_unavailable`).
        """
        ended = asyncio.get_running_loop().time()
        content = "".join(answer.parts)
        content_tokens = self._counter.count(content)
        usage = _usage(answer, content_tokens)
        model: str | None = None
        if answer.source == "model":
            model = (answer.completion and answer.completion.model) or self._model
        row = _stored_answer(answer, ended, usage, model)
        record = AnswerRecord(
            conversation_id=chat.id,
            client_key=client.key,
            reply_to=answer.question_id,
            asked_on=answer.asked_on or row.created_at.date(),
            reserved=answer.reserved,
            spent=usage.total_tokens,
            content=content,
            source=answer.source,
            tokens=content_tokens,
            **vars(row),
        )
        await self._keep(record)
        self._report(row)
        if answer.error is not None or row.finish_reason == "interrupted":
            return None
        return DoneData(
            content=content,
            finish_reason=answer.reason(),
            usage=usage,
            model=model,
            latency_ms=row.latency_ms,
            source=answer.source,
        )

    async def _keep(self, record: AnswerRecord) -> None:
        """Store `record`, retrying with backoff; spool it when the database stays away."""
        try:  # first without tenacity, whose machinery costs 60 us of CPU an answer
            await store_record(self._database, record)
            return
        except StorageUnavailableError:
            pass
        retrying = AsyncRetrying(
            stop=stop_after_delay(self._store_retry_seconds),
            wait=wait_exponential_jitter(multiplier=0.2, max=5),
            retry=retry_if_exception_type(StorageUnavailableError),
            reraise=True,
        )
        try:
            await retrying(store_record, self._database, record)
            return
        except StorageUnavailableError:
            logger.error("answer to message %d: storage failed; spooled", record.reply_to)
        try:
            await self._spool.append(record)
        except OSError as exc:
            logger.exception("answer to message %d lost: the spool failed", record.reply_to)
            raise StorageUnavailableError() from exc

    def _report(self, row: "StoredAnswer") -> None:
        outcome = row.error_code or row.finish_reason or "stop"
        first_token_s = row.first_token_ms / 1000 if row.first_token_ms is not None else None
        self._metrics.question_finished(
            outcome,
            first_token_s,
            row.latency_ms / 1000,
            row.prompt_tokens,
            row.completion_tokens,
        )
        logger.info(
            "answer %s: %s ms, first token %s ms, %s+%s tokens, model %s",
            outcome,
            row.latency_ms,
            row.first_token_ms,
            row.prompt_tokens,
            row.completion_tokens,
            row.model,
            extra={
                "outcome": outcome,
                "latency_ms": row.latency_ms,
                "first_token_ms": row.first_token_ms,
                "prompt_tokens": row.prompt_tokens,
                "completion_tokens": row.completion_tokens,
                "model": row.model,
            },
        )


@dataclass(frozen=True)  # no slots: `vars()` gives its columns for the INSERT
class StoredAnswer:
    """The columns of an answer's row that its log line and metrics report."""

    created_at: datetime
    model: str | None
    finish_reason: str
    error_code: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    first_token_ms: int | None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


def _stored_answer(answer: Answer, ended: float, usage: Usage, model: str | None) -> StoredAnswer:
    cached_tokens, cache_write_tokens = _cache_counts(answer)
    first_token_ms = None
    if answer.first_token_at is not None:
        first_token_ms = _ms(answer.first_token_at - answer.started)
    return StoredAnswer(
        created_at=utcnow(),
        model=model,
        finish_reason=answer.reason(),
        error_code=answer.error.code if answer.error else None,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        latency_ms=_ms(ended - answer.started),
        first_token_ms=first_token_ms,
        cached_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens,
    )


def _usage(answer: Answer, content_tokens: int) -> Usage:
    """The provider's reported usage, or our own count where it reported none, plus the
    tool rounds before it (spent even when the answer then failed or was stopped)."""
    reported = answer.completion.usage if answer.completion else None
    turn = reported or TokenUsage(answer.prompt_estimate, content_tokens)
    for round_ in answer.tool_rounds:
        turn += round_
    prompt, generated = turn.prompt_tokens, turn.completion_tokens
    return Usage(prompt_tokens=prompt, completion_tokens=generated, total_tokens=prompt + generated)


def _cache_counts(answer: Answer) -> tuple[int | None, int | None]:
    """Prompt tokens read from and written to the provider's cache over the turn's rounds;
    None where no round was counted by the provider."""
    last = answer.completion.usage if answer.completion else None
    rounds = [*answer.tool_rounds, *([last] if last else [])]
    if not rounds:
        return None, None
    return sum(u.cached_tokens for u in rounds), sum(u.cache_write_tokens for u in rounds)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
