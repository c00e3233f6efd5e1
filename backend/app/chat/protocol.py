"""The WebSocket protocol at /ws: every frame is `{"type": ..., "data": ...}`."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Client -> server


class MessageFrame(_Frame):
    type: Literal["message"]
    data: str


class CancelFrame(_Frame):
    type: Literal["cancel"]
    data: None = None


class PingFrame(_Frame):
    type: Literal["ping"]
    data: None = None


ClientFrame = Annotated[MessageFrame | CancelFrame | PingFrame, Field(discriminator="type")]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


# Server -> client


class HistoryItem(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    source: str | None = None  # an answer's, as in `done`: "model" or "resume_excerpt"


class SessionData(BaseModel):
    session_id: uuid.UUID
    resumed: bool
    history: list[HistoryItem]
    answering: bool = False  # an answer is streaming: its chunks follow this frame


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


# leak_blocked: the answer began repeating the system prompt and was replaced (leak_guard).
FinishReason = Literal["stop", "length", "cancelled", "content_filter", "leak_blocked"]


class DoneData(BaseModel):
    content: str
    finish_reason: FinishReason
    usage: Usage
    model: str | None = None
    latency_ms: int
    source: Literal["model", "resume_excerpt"] = "model"


class ErrorData(BaseModel):
    code: str
    message: str
    retry_after: float | None = None


class SessionEvent(BaseModel):
    type: Literal["session"] = "session"
    data: SessionData


class ChunkEvent(BaseModel):
    type: Literal["chunk"] = "chunk"
    data: str
    seq: int  # 1 for an answer's first chunk; reconnect with ?last_seq= to resume after one


class DoneEvent(BaseModel):
    type: Literal["done"] = "done"
    data: DoneData


class ErrorEvent(BaseModel):
    type: Literal["error"] = "error"
    data: ErrorData


class PongEvent(BaseModel):
    type: Literal["pong"] = "pong"
    data: None = None


ServerEvent = SessionEvent | ChunkEvent | DoneEvent | ErrorEvent | PongEvent
