"""One chat turn, end to end: check, store the question, stream the answer, store the answer.

A turn runs as its own task, owned by the service rather than the socket, so a visitor
who disconnects mid-answer loses nothing: the answer is completed and stored. The
database is touched in two short transactions and never held while the model streams.
Every way in (WebSocket, REST) goes through `start_turn`, so limits and budgets hold
for all of them.
"""

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import (
    AppError,
    BudgetExceededError,
    InvalidMessageError,
    MessageTooLongError,
    RateLimitedError,
    SessionLimitError,
    StorageUnavailableError,
)
from app.core.logger import get_logger
from app.db.base import utcnow
from app.db.repositories import ConversationRepository, MessageRepository, UsageRepository
from app.db.tables import Message
from app.models.websocket import DoneData, HistoryItem, Usage
from app.services.guards import SERVICE_KEY, Budgets, client_counter
from app.services.llm_client import Completion, LLMClient
from app.services.metrics import Metrics
from app.services.prompts import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMER,
    Turn,
    build_messages,
    fit_history,
)
from app.services.rate_limit import RateLimiter
from app.services.tokens import TokenCounter
from app.services.turns import ActiveTurn, Answer, ChatSession, Client, OpenedSession, TurnSink

logger = get_logger(__name__)

# C0 controls other than tab and newline, DEL, and C1 controls.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_chars: int
    max_message_tokens: int
    history_messages: int
    context_tokens: int
    max_answer_tokens: int


@contextlib.asynccontextmanager
async def _storage(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One short transaction; database failures become `storage_unavailable`."""
    try:
        async with sessions.begin() as session:
            yield session
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        logger.error("storage failed: %s", exc)
        raise StorageUnavailableError() from exc


class ConversationService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        llm: LLMClient,
        counter: TokenCounter,
        system_prompt: str,
        *,
        limits: Limits,
        budgets: Budgets,
        limiter: RateLimiter,
        metrics: Metrics,
    ) -> None:
        self._sessions = sessions
        self._llm = llm
        self._counter = counter
        self._system_prompt = system_prompt
        self.system_tokens = counter.count(system_prompt) + MESSAGE_OVERHEAD
        self._limits = limits
        self._budgets = budgets
        self._limiter = limiter
        self._metrics = metrics
        self._turns: set[asyncio.Task[None]] = set()

    def history_budget(self, question_tokens: int) -> int:
        """Tokens left for earlier turns once the system prompt, question and answer fit."""
        return (
            self._limits.context_tokens
            - self._limits.max_answer_tokens
            - self.system_tokens
            - (question_tokens + MESSAGE_OVERHEAD)
            - REPLY_PRIMER
        )

    async def open_session(self, requested: str | None) -> OpenedSession:
        """Resume `requested` if stored; else a new session, stored with its first question."""
        wanted = _parse_uuid(requested)
        if wanted is not None:
            async with _storage(self._sessions) as db:
                found = await ConversationRepository(db).get(wanted)
                rows = await MessageRepository(db).list_recent(
                    wanted, self._limits.history_messages
                )
            if found is not None:
                history = [
                    HistoryItem(role=row.role, content=row.content, created_at=row.created_at)
                    for row in rows
                ]
                return OpenedSession(ChatSession(wanted, stored=True), True, history, False)
        fresh = ChatSession(uuid.uuid4(), stored=False)
        return OpenedSession(fresh, False, [], not_found=requested is not None)

    def start_turn(
        self, chat: ChatSession, question: str, client: Client, sink: TurnSink
    ) -> ActiveTurn:
        question, tokens = self.check_question(question)
        turn = ActiveTurn()
        turn.task = asyncio.create_task(
            self._run_guarded(chat, question, tokens, client, sink, turn)
        )
        self._turns.add(turn.task)
        turn.task.add_done_callback(self._turns.discard)
        return turn

    def check_question(self, question: str) -> tuple[str, int]:
        """The question as it will be stored, and its token count; or why it is refused."""
        question = question.strip()
        if not question:
            raise InvalidMessageError("A question cannot be empty.")
        if _CONTROL_CHARACTERS.search(question):
            raise InvalidMessageError("Questions cannot contain control characters.")
        limit = self._limits.max_message_tokens
        if len(question) > self._limits.max_message_chars:
            raise MessageTooLongError(
                f"Questions are limited to {self._limits.max_message_chars} characters "
                f"(this one has {len(question)})."
            )
        tokens = self._counter.count(question)
        if tokens > limit:
            raise MessageTooLongError(
                f"Questions are limited to {limit} tokens (this one has {tokens})."
            )
        return question, tokens

    async def wait_for_turns(self, grace_seconds: float) -> None:
        """Let answers in flight finish and be stored, for up to `grace_seconds`."""
        if self._turns:
            logger.info("waiting for %d answer(s) in flight", len(self._turns))
            await asyncio.wait(set(self._turns), timeout=grace_seconds)

    async def drain(self, grace_seconds: float) -> None:
        """Wait for answers in flight, then stop (and store) whatever is left."""
        await self.wait_for_turns(grace_seconds)
        for task in set(self._turns):
            task.cancel()
        if self._turns:
            await asyncio.wait(set(self._turns), timeout=5)

    async def _run_guarded(
        self,
        chat: ChatSession,
        question: str,
        tokens: int,
        client: Client,
        sink: TurnSink,
        turn: ActiveTurn,
    ) -> None:
        try:
            await self._limiter.check_question(client.ip, str(chat.id))
            if not chat.stored:
                await self._limiter.check_new_session(client.ip)
            async with self._limiter.stream_slot():
                await self._run_turn(chat, question, tokens, client, sink, turn)
        except AppError as error:
            if isinstance(error, RateLimitedError | BudgetExceededError | SessionLimitError):
                self._metrics.refused(error.code)
            await sink.error(error)
        except Exception:
            logger.exception("chat turn failed unexpectedly")
            await sink.error(AppError())

    async def _run_turn(
        self,
        chat: ChatSession,
        question: str,
        tokens: int,
        client: Client,
        sink: TurnSink,
        turn: ActiveTurn,
    ) -> None:
        answer = Answer(started=asyncio.get_running_loop().time())
        history = await self._store_question(chat, question, tokens, client)
        kept = fit_history(history, self.history_budget(tokens))
        messages = build_messages(self._system_prompt, kept, question)
        logger.debug(
            "question: %s (%d of %d earlier messages kept)", question, len(kept), len(history)
        )
        turn.stream_task = asyncio.create_task(self._stream(messages, answer, sink))
        if turn.cancel_requested:  # cancelled while the question was being stored
            turn.stream_task.cancel()
        try:
            answer.completion = await turn.stream_task
        except asyncio.CancelledError:
            if not turn.cancel_requested or _cancelling():
                answer.finish_reason = "interrupted"
                await asyncio.shield(self._store_answer(chat, client, kept, tokens, answer))
                raise
            answer.finish_reason = "cancelled"
        except AppError as error:
            answer.error = error
            self._metrics.upstream_error(error.code)
        try:
            done = await self._store_answer(chat, client, kept, tokens, answer)
        except AppError as error:
            await sink.error(error)
            return
        await (sink.done(done) if done is not None else sink.error(answer.error or AppError()))

    async def _stream(
        self, messages: list[dict[str, str]], answer: Answer, sink: TurnSink
    ) -> Completion:
        completion: Completion | None = None
        async with contextlib.aclosing(self._llm.stream_chat(messages)) as stream:
            async for item in stream:
                if isinstance(item, Completion):
                    completion = item
                    continue
                if answer.first_token_at is None:
                    answer.first_token_at = asyncio.get_running_loop().time()
                answer.parts.append(item)
                await sink.chunk(item)
        assert completion is not None, "stream_chat always ends with a Completion"
        return completion

    async def _store_question(
        self, chat: ChatSession, question: str, tokens: int, client: Client
    ) -> list[Turn]:
        """Check budgets and store the question; returns the earlier messages."""
        now = utcnow()
        async with _storage(self._sessions) as db:
            conversations, messages = ConversationRepository(db), MessageRepository(db)
            conversation = await conversations.get(chat.id) if chat.stored else None
            mine = client_counter(client.key)
            spent = await UsageRepository(db).tokens_on(now.date(), [SERVICE_KEY, mine])
            self._budgets.check(
                questions=conversation.question_count if conversation else 0,
                session=conversation.tokens_used if conversation else 0,
                client_today=spent.get(mine, 0),
                today=spent.get(SERVICE_KEY, 0),
            )
            if conversation is None:
                rows: list[Message] = []
                await conversations.create(chat.id, client.key)
            else:
                rows = await messages.list_recent(chat.id, self._limits.history_messages)
            await conversations.count_question(chat.id, now)
            await messages.add(
                Message(
                    conversation_id=chat.id,
                    role="user",
                    content=question,
                    tokens=tokens,
                    created_at=now,
                )
            )
        chat.stored = True
        return [Turn(row.role, row.content, self._tokens_of(row)) for row in rows]

    def _tokens_of(self, row: Message) -> int:
        return row.tokens if row.tokens is not None else self._counter.count(row.content)

    async def _store_answer(
        self,
        chat: ChatSession,
        client: Client,
        history: list[Turn],
        question_tokens: int,
        answer: Answer,
    ) -> DoneData | None:
        """Store the answer, however it ended; the `done` payload when it ended well."""
        now = asyncio.get_running_loop().time()
        content = "".join(answer.parts)
        content_tokens = self._counter.count(content)
        usage = self._usage(history, question_tokens, content_tokens, answer.completion)
        model = (answer.completion and answer.completion.model) or self._llm.model
        row = Message(
            conversation_id=chat.id,
            role="assistant",
            content=content,
            created_at=utcnow(),
            model=model,
            finish_reason=answer.reason(),
            error_code=answer.error.code if answer.error else None,
            tokens=content_tokens,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=_ms(now - answer.started),
            first_token_ms=_ms(answer.first_token_at - answer.started)
            if answer.first_token_at is not None
            else None,
        )
        async with _storage(self._sessions) as db:
            await MessageRepository(db).add(row)
            await ConversationRepository(db).add_tokens(chat.id, usage.total_tokens, row.created_at)
            await UsageRepository(db).add(
                row.created_at.date(), [SERVICE_KEY, client_counter(client.key)], usage.total_tokens
            )
        self._report(row, answer)
        if answer.error is not None or row.finish_reason == "interrupted":
            return None
        return DoneData(
            content=content,
            finish_reason=answer.reason(),
            usage=usage,
            model=model,
            latency_ms=row.latency_ms or 0,
        )

    def _report(self, row: Message, answer: Answer) -> None:
        outcome = row.error_code or row.finish_reason or "stop"
        first_token_s = (row.first_token_ms or 0) / 1000 if row.first_token_ms is not None else None
        self._metrics.question_finished(
            outcome,
            first_token_s,
            (row.latency_ms or 0) / 1000,
            row.prompt_tokens or 0,
            row.completion_tokens or 0,
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

    def _usage(
        self,
        history: list[Turn],
        question_tokens: int,
        content_tokens: int,
        completion: Completion | None,
    ) -> Usage:
        """The provider's reported usage, or our own count where it reported none."""
        if completion is not None and completion.usage is not None:
            prompt, generated = completion.usage.prompt_tokens, completion.usage.completion_tokens
        else:
            earlier = sum(turn.tokens + MESSAGE_OVERHEAD for turn in history)
            question = question_tokens + MESSAGE_OVERHEAD
            prompt = self.system_tokens + earlier + question + REPLY_PRIMER
            generated = content_tokens
        return Usage(
            prompt_tokens=prompt, completion_tokens=generated, total_tokens=prompt + generated
        )


def _parse_uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _cancelling() -> bool:
    """True when the task running this turn is itself being cancelled (shutdown)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _ms(seconds: float) -> int:
    return round(seconds * 1000)
