"""One chat turn, end to end: store the question, stream the answer, store the answer.

A turn runs as its own task, owned by the service rather than the socket, so a visitor
who disconnects mid-answer loses nothing: the answer is completed and stored. The
database is touched in two short transactions and never held while the model streams.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import (
    AppError,
    InvalidMessageError,
    MessageTooLongError,
    StorageUnavailableError,
)
from app.core.logger import get_logger
from app.db.base import utcnow
from app.db.repositories import ConversationRepository, MessageRepository
from app.db.tables import Message
from app.models.websocket import DoneData, HistoryItem, Usage
from app.services.llm_client import Completion, LLMClient
from app.services.prompts import Turn, build_messages
from app.services.tokens import TokenCounter

logger = get_logger(__name__)


class TurnSink(Protocol):
    """Where a turn's events go; the WebSocket layer provides one per socket."""

    async def chunk(self, text: str) -> None: ...
    async def done(self, data: DoneData) -> None: ...
    async def error(self, error: AppError) -> None: ...


@dataclass(slots=True)
class ChatSession:
    id: uuid.UUID
    stored: bool


@dataclass(frozen=True, slots=True)
class OpenedSession:
    session: ChatSession
    resumed: bool
    history: list[HistoryItem]
    not_found: bool


@dataclass(slots=True)
class ActiveTurn:
    task: asyncio.Task[None] | None = None
    stream_task: asyncio.Task[Completion] | None = None
    cancel_requested: bool = False

    def done(self) -> bool:
        return self.task is None or self.task.done()

    def cancel(self) -> None:
        """Stop the model; the partial answer is stored with finish reason `cancelled`."""
        self.cancel_requested = True
        if self.stream_task is not None:
            self.stream_task.cancel()


@dataclass(slots=True)
class _Answer:
    """What one turn produced, however it ended."""

    started: float
    parts: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    completion: Completion | None = None
    error: AppError | None = None
    finish_reason: str | None = None

    def reason(self) -> str:
        if self.error is not None:
            return "error"
        if self.finish_reason is not None:
            return self.finish_reason
        reported = self.completion.finish_reason if self.completion else "stop"
        return reported if reported in ("length", "content_filter") else "stop"


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
        max_message_chars: int,
        history_messages: int,
    ) -> None:
        self._sessions = sessions
        self._llm = llm
        self._counter = counter
        self._system_prompt = system_prompt
        self._system_tokens = counter.count(system_prompt)
        self._max_message_chars = max_message_chars
        self._history_messages = history_messages
        self._turns: set[asyncio.Task[None]] = set()

    async def open_session(self, requested: str | None) -> OpenedSession:
        """Resume `requested` if stored; else a new session, stored with its first question."""
        wanted = _parse_uuid(requested)
        if wanted is not None:
            async with _storage(self._sessions) as db:
                found = await ConversationRepository(db).exists(wanted)
                rows = await MessageRepository(db).list_recent(wanted, self._history_messages)
            if found:
                history = [
                    HistoryItem(role=row.role, content=row.content, created_at=row.created_at)
                    for row in rows
                ]
                return OpenedSession(ChatSession(wanted, stored=True), True, history, False)
        fresh = ChatSession(uuid.uuid4(), stored=False)
        return OpenedSession(fresh, False, [], not_found=requested is not None)

    def start_turn(self, chat: ChatSession, question: str, sink: TurnSink) -> ActiveTurn:
        question = self.check_question(question)
        turn = ActiveTurn()
        turn.task = asyncio.create_task(self._run_guarded(chat, question, sink, turn))
        self._turns.add(turn.task)
        turn.task.add_done_callback(self._turns.discard)
        return turn

    def check_question(self, question: str) -> str:
        question = question.strip()
        if not question:
            raise InvalidMessageError("A question cannot be empty.")
        if len(question) > self._max_message_chars:
            raise MessageTooLongError(
                f"Questions are limited to {self._max_message_chars} characters "
                f"(this one has {len(question)})."
            )
        return question

    async def drain(self, grace_seconds: float) -> None:
        """Let answers in flight finish and be stored, for up to `grace_seconds`."""
        if self._turns:
            logger.info("waiting for %d answer(s) in flight", len(self._turns))
            await asyncio.wait(set(self._turns), timeout=grace_seconds)
        for task in set(self._turns):
            task.cancel()
        if self._turns:
            await asyncio.wait(set(self._turns), timeout=5)

    async def _run_guarded(
        self, chat: ChatSession, question: str, sink: TurnSink, turn: ActiveTurn
    ) -> None:
        try:
            await self._run_turn(chat, question, sink, turn)
        except Exception:
            logger.exception("chat turn failed unexpectedly")
            await sink.error(AppError())

    async def _run_turn(
        self, chat: ChatSession, question: str, sink: TurnSink, turn: ActiveTurn
    ) -> None:
        answer = _Answer(started=asyncio.get_running_loop().time())
        try:
            history = await self._store_question(chat, question)
        except AppError as error:
            await sink.error(error)
            return
        messages = build_messages(self._system_prompt, history, question)
        logger.debug("question: %s", question)
        turn.stream_task = asyncio.create_task(self._stream(messages, answer, sink))
        if turn.cancel_requested:  # cancelled while the question was being stored
            turn.stream_task.cancel()
        try:
            answer.completion = await turn.stream_task
        except asyncio.CancelledError:
            if not turn.cancel_requested or _cancelling():
                answer.finish_reason = "interrupted"
                await asyncio.shield(self._store_answer(chat, messages, answer))
                raise
            answer.finish_reason = "cancelled"
        except AppError as error:
            answer.error = error
        try:
            done = await self._store_answer(chat, messages, answer)
        except AppError as error:
            await sink.error(error)
            return
        await (sink.done(done) if done is not None else sink.error(answer.error or AppError()))

    async def _stream(
        self, messages: list[dict[str, str]], answer: _Answer, sink: TurnSink
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

    async def _store_question(self, chat: ChatSession, question: str) -> list[Turn]:
        now = utcnow()
        async with _storage(self._sessions) as db:
            messages = MessageRepository(db)
            if chat.stored:
                rows = await messages.list_recent(chat.id, self._history_messages)
                await ConversationRepository(db).touch(chat.id, now)
            else:
                rows = []
                await ConversationRepository(db).create(chat.id)
            await messages.add(
                Message(conversation_id=chat.id, role="user", content=question, created_at=now)
            )
        chat.stored = True
        return [Turn(row.role, row.content) for row in rows]

    async def _store_answer(
        self, chat: ChatSession, messages: list[dict[str, str]], answer: _Answer
    ) -> DoneData | None:
        """Store the answer, however it ended; the `done` payload when it ended well."""
        now = asyncio.get_running_loop().time()
        content = "".join(answer.parts)
        usage = self._usage(messages, content, answer.completion)
        model = (answer.completion and answer.completion.model) or self._llm.model
        row = Message(
            conversation_id=chat.id,
            role="assistant",
            content=content,
            created_at=utcnow(),
            model=model,
            finish_reason=answer.reason(),
            error_code=answer.error.code if answer.error else None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=_ms(now - answer.started),
            first_token_ms=_ms(answer.first_token_at - answer.started)
            if answer.first_token_at is not None
            else None,
        )
        async with _storage(self._sessions) as db:
            await MessageRepository(db).add(row)
            await ConversationRepository(db).touch(chat.id, row.created_at)
        logger.info(
            "answer %s: %d ms, first token %s ms, %d+%d tokens, model %s",
            row.finish_reason if row.error_code is None else row.error_code,
            row.latency_ms,
            row.first_token_ms,
            usage.prompt_tokens,
            usage.completion_tokens,
            model,
        )
        if answer.error is not None or row.finish_reason == "interrupted":
            return None
        return DoneData(
            content=content,
            finish_reason=answer.reason(),
            usage=usage,
            model=model,
            latency_ms=row.latency_ms or 0,
        )

    def _usage(
        self, messages: Sequence[dict[str, str]], content: str, completion: Completion | None
    ) -> Usage:
        """The provider's reported usage, or our own count where it reported none."""
        if completion is not None and completion.usage is not None:
            prompt, generated = completion.usage.prompt_tokens, completion.usage.completion_tokens
        else:
            rest = sum(3 + self._counter.count(m["content"]) for m in messages[1:])
            prompt = self._system_tokens + 3 + rest + 3
            generated = self._counter.count(content)
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
