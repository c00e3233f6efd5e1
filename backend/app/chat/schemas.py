"""Wire models of the visitor REST routes."""

import uuid

from pydantic import BaseModel, ConfigDict, Field

from app.chat.protocol import FinishReason, HistoryItem, Usage


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"message": "What does she do?", "stream": False}]},
    )

    message: str = Field(
        description="The visitor's question: some visible text, no control characters "
        "(else `invalid_message`, as on the WebSocket).",
        max_length=100_000,
    )
    session_id: uuid.UUID | None = Field(
        default=None, description="Continue this conversation; a new one starts when omitted."
    )
    stream: bool = Field(
        default=False,
        description="Answer as Server-Sent Events (also chosen by `Accept: text/event-stream`).",
    )


class ChatResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "3109bafa-f921-48f3-a482-183553ca503d",
                    "answer": "Maya is a senior backend engineer at Nordpay in Stockholm.",
                    "finish_reason": "stop",
                    "usage": {"prompt_tokens": 1254, "completion_tokens": 14, "total_tokens": 1268},
                    "model": "openai/gpt-4o-mini",
                    "source": "model",
                }
            ]
        }
    )

    session_id: uuid.UUID
    answer: str
    finish_reason: FinishReason
    usage: Usage
    model: str | None
    source: str = Field(description="`model`, or `resume_excerpt` when no model could answer.")


class SessionHistory(BaseModel):
    session_id: uuid.UUID
    messages: list[HistoryItem]


class Profile(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Maya Lindqvist",
                    "headline": "Senior Software Engineer",
                    "greeting": "Hi! I'm Maya Lindqvist's assistant. Ask me about her work.",
                    "suggested_questions": ["What has Maya worked on recently?"],
                    "mode": "model",
                }
            ]
        }
    )

    name: str
    headline: str
    greeting: str
    suggested_questions: list[str]
    mode: str = Field(description="`model`, `resume_excerpt` or `unavailable`.")
