"""One chat turn, end to end: check, store the question, stream the answer, store the answer.

A turn runs as its own task, owned by the service rather than the socket, so a visitor
who disconnects mid-answer loses nothing: the answer is completed and stored. The
database is touched in two short transactions and never held while the model streams.
Every way in (WebSocket, REST) goes through `start_turn`, so limits and budgets hold
for all of them.
"""

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.chat.budgets import Budgets
from app.chat.leak_guard import LEAK_BLOCKED, guard_answer
from app.chat.prompts import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMER,
    HistoryMessage,
    build_messages,
    fit_history,
)
from app.chat.questions import check_question
from app.chat.spool import AnswerSpool
from app.chat.store import MessageStore
from app.chat.tools import GapRecorder, ToolLoop
from app.chat.turns import ActiveTurn, Answer, ChatSession, Client, OpenedSession, TurnSink
from app.core.errors import (
    AppError,
    BudgetExceededError,
    LLMTimeoutError,
    LLMUnavailableError,
    RateLimitedError,
    SessionLimitError,
)
from app.core.logger import get_logger
from app.core.metrics import Metrics
from app.db.engine import Database
from app.limits.limiter import RateLimiter
from app.llm.chain import ModelChain
from app.llm.client import Completion, TokenUsage
from app.llm.pacing import Pace
from app.llm.tokens import TokenCounter
from app.resume.context import ResumeContext
from app.resume.excerpts import Excerpts
from app.resume.loader import Resume, load_resume

logger = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Answerers:
    """Who answers: the model chain, and the resume's excerpts when no model can."""

    chain: ModelChain
    model_configured: bool
    excerpt_passages: int
    tools: ToolLoop | None = None  # the model's tools (LLM_TOOLS=auto)
    gaps: GapRecorder | None = None  # where excerpt answers that match nothing are noted


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_chars: int
    max_message_tokens: int
    history_messages: int
    context_tokens: int
    max_answer_tokens: int


class ConversationService:
    def __init__(
        self,
        database: Database,
        answers: Answerers,
        counter: TokenCounter,
        context: ResumeContext,
        *,
        limits: Limits,
        budgets: Budgets,
        limiter: RateLimiter,
        metrics: Metrics,
        spool: AnswerSpool,
        store_retry_seconds: float,
        chunk_interval: float,
    ) -> None:
        self._answers = answers
        self._chunk_interval = chunk_interval  # STREAM_CHUNK_INTERVAL: see app/llm/pacing.py
        self._counter = counter
        self._limits = limits
        self._limiter = limiter
        self._metrics = metrics
        self._store = MessageStore(
            database,
            counter,
            budgets=budgets,
            metrics=metrics,
            history_messages=limits.history_messages,
            model=answers.chain.primary,
            spool=spool,
            store_retry_seconds=store_retry_seconds,
        )
        self._turns: set[asyncio.Task[None]] = set()
        self._shutdown_deadline: float | None = None
        self._use(context)

    @property
    def resume(self) -> Resume:
        return self.context.resume

    def _use(self, context: ResumeContext) -> None:
        """Adopt a resume, provided a longest question and answer still fit beside it."""
        room = self._history_budget(context, self._limits.max_message_tokens)
        context.check_room(
            room,
            context_tokens=self._limits.context_tokens,
            answer_tokens=self._limits.max_answer_tokens,
            question_tokens=self._limits.max_message_tokens,
        )
        self.context = context

    async def reload_resume(self, path: Path, max_bytes: int) -> Resume:
        """Load the resume file again; a broken one raises and leaves the old one in use."""
        resume = await asyncio.to_thread(load_resume, path, max_bytes)
        excerpts = self.context.excerpts is not None
        built = await asyncio.to_thread(
            ResumeContext.build, resume, self._counter, excerpts=excerpts, tools=self.context.tools
        )
        self._use(built)
        logger.info("resume reloaded: %s (%s)", resume.owner_name, resume.format)
        return resume

    def _history_budget(self, context: ResumeContext, question_tokens: int) -> int:
        """Tokens left for earlier turns once the system prompt, question and answer fit."""
        return (
            self._limits.context_tokens
            - self._limits.max_answer_tokens
            - context.system_tokens
            - (question_tokens + MESSAGE_OVERHEAD)
            - REPLY_PRIMER
        )

    async def open_session(self, requested: str | None) -> OpenedSession:
        """Resume `requested` if stored; else a new session, stored with its first question."""
        wanted = _parse_uuid(requested)
        history = await self._store.history(wanted) if wanted is not None else None
        if wanted is not None and history is not None:
            return OpenedSession(
                ChatSession(wanted, stored=True), resumed=True, history=history, not_found=False
            )
        fresh = ChatSession(uuid.uuid4(), stored=False)
        return OpenedSession(fresh, resumed=False, history=[], not_found=requested is not None)

    def start_turn(
        self, chat: ChatSession, question: str, client: Client, sink: TurnSink
    ) -> ActiveTurn:
        question, tokens = self.check_question(question)
        turn = ActiveTurn(chat, question, tokens, client, sink)
        turn.task = asyncio.create_task(self._run_guarded(turn))
        self._turns.add(turn.task)
        turn.task.add_done_callback(self._turns.discard)
        return turn

    def check_question(self, question: str) -> tuple[str, int]:
        """The question as it will be stored, and its token count; or why it is refused."""
        return check_question(
            question,
            self._counter,
            max_chars=self._limits.max_message_chars,
            max_tokens=self._limits.max_message_tokens,
        )

    async def wait_for_turns(self, grace_seconds: float) -> None:
        """Let answers in flight finish and be stored, within `grace_seconds` of the first call."""
        loop = asyncio.get_running_loop()
        if self._shutdown_deadline is None:
            self._shutdown_deadline = loop.time() + grace_seconds
        if self._turns:
            logger.info("waiting for %d answer(s) in flight", len(self._turns))
            remaining = max(0.0, self._shutdown_deadline - loop.time())
            await asyncio.wait(set(self._turns), timeout=remaining)

    async def drain(self, grace_seconds: float) -> None:
        """Wait for answers in flight, then stop (and store) whatever is left."""
        await self.wait_for_turns(grace_seconds)
        for task in set(self._turns):
            task.cancel()
        if self._turns:
            await asyncio.wait(set(self._turns), timeout=5)

    async def _run_guarded(self, turn: ActiveTurn) -> None:
        try:
            await self._limiter.check_question(turn.client.network, str(turn.chat.id))
            if not turn.chat.stored:
                await self._limiter.check_new_session(turn.client.network)
            async with self._limiter.stream_slot():
                await self._run_turn(turn)
        except AppError as error:
            if isinstance(error, RateLimitedError | BudgetExceededError | SessionLimitError):
                self._metrics.refused(error.code)
            await turn.sink.error(error)
        except Exception:
            logger.exception("chat turn failed unexpectedly")
            await turn.sink.error(AppError())

    async def _run_turn(self, turn: ActiveTurn) -> None:
        chat, question, tokens, client, sink = (
            turn.chat,
            turn.question,
            turn.tokens,
            turn.client,
            turn.sink,
        )
        answer = Answer(started=asyncio.get_running_loop().time())
        context = self.context
        history_room = self._history_budget(context, tokens)

        kept: list[HistoryMessage] = []  # the earlier turns sent, chosen while storing

        def reserve(history: list[HistoryMessage]) -> int:
            nonlocal kept
            kept = fit_history(history, history_room)
            answer.prompt_estimate = _prompt_estimate(context, kept, tokens)
            if not self._answers.model_configured and context.excerpts is not None:
                return 0  # excerpt answers spend no tokens
            return answer.prompt_estimate + self._limits.max_answer_tokens

        stored = await self._store.store_question(chat, question, tokens, client, reserve)
        history = stored.history
        messages = build_messages(context.system_prompt, kept, question)
        answer.question_id, answer.asked_on = stored.id, stored.asked_on
        answer.reserved = stored.reserved
        logger.debug(
            "question: %s (%d of %d earlier messages kept)", question, len(kept), len(history)
        )
        turn.stream_task = asyncio.create_task(
            self._stream(messages, question, answer, sink, chat.id)
        )
        if turn.cancel_requested:  # cancelled while the question was being stored
            turn.stream_task.cancel()
        try:
            answer.completion = await turn.stream_task
        except asyncio.CancelledError:
            if not turn.cancel_requested or _cancelling():
                answer.finish_reason = "interrupted"
                await asyncio.shield(self._store.store_answer(chat, client, answer))
                raise
            answer.finish_reason = "cancelled"
        except AppError as error:
            answer.error = error
            self._metrics.upstream_error(error.code)
        try:
            done = await self._store.store_answer(chat, client, answer)
        except AppError as error:
            await sink.error(error)
            return
        await (sink.done(done) if done is not None else sink.error(answer.error or AppError()))

    async def _stream(
        self,
        messages: list[dict[str, Any]],
        question: str,
        answer: Answer,
        sink: TurnSink,
        chat_id: uuid.UUID,
    ) -> Completion:
        """The model's answer, or when no model can answer, the resume's own words."""
        excerpts = self.context.excerpts
        if self._answers.model_configured or excerpts is None:
            try:
                return await self._stream_model(messages, answer, sink, chat_id)
            except (LLMUnavailableError, LLMTimeoutError) as error:
                if answer.parts or excerpts is None:
                    raise
                logger.warning("answering from the resume: the model failed (%s)", error.code)
                self._metrics.upstream_error(error.code)
        return await self._stream_excerpts(excerpts, question, answer, sink)

    async def _stream_model(
        self, messages: list[dict[str, Any]], answer: Answer, sink: TurnSink, chat_id: uuid.UUID
    ) -> Completion:
        completion: Completion | None = None
        tools = self._answers.tools
        pace = Pace(self._chunk_interval)
        answers = (
            tools.stream(messages, chat_id, answer.tool_rounds, pace)
            if tools
            else self._answers.chain.stream(messages, pace=pace)
        )
        context = self.context
        guarded = guard_answer(answers, context.leak_patterns, context.leak_replacement)
        async with contextlib.aclosing(guarded) as stream:
            async for item in stream:
                if isinstance(item, Completion):
                    completion = item
                    continue
                _record(answer, item)
                await sink.chunk(item)
                pace.sent()
        assert completion is not None, "stream_chat always ends with a Completion"
        if completion.finish_reason == LEAK_BLOCKED:
            self._metrics.leak_blocked()
        return completion

    async def _stream_excerpts(
        self, excerpts: Excerpts, question: str, answer: Answer, sink: TurnSink
    ) -> Completion:
        answer.source = "resume_excerpt"
        index = await excerpts.index()
        reply = index.answer(question, self._answers.excerpt_passages)
        for line in reply.text.splitlines(keepends=True):
            _record(answer, line)
            await sink.chunk(line)
        if self._answers.gaps is not None and not reply.matched:
            await self._answers.gaps.record_gap(question)
        return Completion("stop", TokenUsage(0, 0), None)


def _prompt_estimate(context: ResumeContext, kept: list[HistoryMessage], tokens: int) -> int:
    """Our count of the prompt: the system prompt, the earlier turns kept, the question."""
    return (
        context.system_tokens
        + sum(earlier.tokens + MESSAGE_OVERHEAD for earlier in kept)
        + tokens
        + MESSAGE_OVERHEAD
        + REPLY_PRIMER
    )


def _record(answer: Answer, text: str) -> None:
    if answer.first_token_at is None:
        answer.first_token_at = asyncio.get_running_loop().time()
    answer.parts.append(text)


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
