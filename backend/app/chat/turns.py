"""The small types a chat turn is made of, shared by the service and the API edges."""

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from app.chat.protocol import DoneData, HistoryItem
from app.core.errors import AppError
from app.llm.client import Completion, TokenUsage


class TurnSink(Protocol):
    """Where a turn's events go; each way in (WebSocket, REST) provides its own."""

    async def chunk(self, text: str) -> None: ...
    async def done(self, data: DoneData) -> None: ...
    async def error(self, error: AppError) -> None: ...


@dataclass(frozen=True, slots=True)
class Client:
    """Who is asking: the address, and the network limits and budgets count it by."""

    ip: str
    network: str  # `app.limits.client_ip.client_network`: an IPv6 /64, or the IPv4 address

    @property
    def key(self) -> str:
        """A pseudonymous key for storage: the raw address is never written to the database."""
        return hashlib.sha256(self.network.encode()).hexdigest()[:32]


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
    """One question in flight: what was asked, by whom, where the answer goes, and its tasks."""

    chat: ChatSession
    question: str
    tokens: int
    client: Client
    sink: TurnSink
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
class Answer:
    """What one turn produced, however it ended."""

    started: float
    parts: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    completion: Completion | None = None
    error: AppError | None = None
    finish_reason: str | None = None
    source: str = "model"
    prompt_estimate: int = 0  # our count of the prompt, for providers that report no usage
    question_id: int = 0  # the stored question's message id
    asked_on: date | None = None  # the day whose counters hold the question's reservation
    reserved: int = 0  # tokens the question reserved against the budgets
    tool_rounds: list[TokenUsage] = field(default_factory=list)  # rounds that called tools

    def reason(self) -> str:
        if self.error is not None:
            return "error"
        if self.finish_reason is not None:
            return self.finish_reason
        reported = self.completion.finish_reason if self.completion else "stop"
        return reported if reported in ("length", "content_filter", "leak_blocked") else "stop"
