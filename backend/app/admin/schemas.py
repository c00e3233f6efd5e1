"""Wire schemas of the owner's and operator's routes under /api/admin."""

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.leads.schemas import LeadItem

ExportFormat = Literal["json", "markdown"]
AnswerSource = Literal["model", "resume_excerpt"]

_ID = "5b1f4c3e-8d2a-4f6b-9c1d-2e3f4a5b6c7d"


class ConversationSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _ID,
                    "created_at": "2025-05-01T09:12:03Z",
                    "updated_at": "2025-05-01T09:15:40Z",
                    "question_count": 3,
                    "tokens_used": 5120,
                    "first_question": "What does she work on?",
                    "sources": ["model"],
                    "lead_count": 1,
                }
            ]
        }
    )

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    question_count: int
    tokens_used: int
    first_question: str | None = Field(
        description="The visitor's first question, cut to 120 characters."
    )
    sources: list[AnswerSource] = Field(
        description="Where its stored answers came from: `model`, `resume_excerpt`, both, "
        "or none yet."
    )
    lead_count: int = Field(0, description="Contact details left in this conversation.")


class ConversationPage(BaseModel):
    items: list[ConversationSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page.",
        examples=["MjAyNS0wNS0wMVQwOToxNTo0MCswMDowMHw1YjFmNGMzZQ"],
    )


class TranscriptMessage(BaseModel):
    """A question (`user`) or an answer (`assistant`); only answers carry how they went."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "role": "assistant",
                    "content": "She builds backend services in Python.",
                    "created_at": "2025-05-01T09:12:05Z",
                    "model": "openai/gpt-4o-mini",
                    "source": "model",
                    "finish_reason": "stop",
                    "error_code": None,
                    "prompt_tokens": 1650,
                    "completion_tokens": 12,
                    "latency_ms": 1840,
                    "first_token_ms": 420,
                }
            ]
        }
    )

    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    model: str | None = None
    source: str | None = Field(None, description="`model` or `resume_excerpt`.")
    finish_reason: str | None = None
    error_code: str | None = Field(None, description="Why the answer failed, if it did.")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = Field(
        None, description="Of the prompt tokens, those the provider read from its cache."
    )
    cache_write_tokens: int | None = Field(
        None, description="Of the prompt tokens, those the provider wrote to its cache."
    )
    latency_ms: int | None = None
    first_token_ms: int | None = None


class Transcript(BaseModel):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    question_count: int
    tokens_used: int
    messages: list[TranscriptMessage]
    leads: list[LeadItem] = Field(default=[], description="Contact details left in it.")


class TranscriptExport(BaseModel):
    """`GET /api/admin/export?format=json`: every matching conversation, newest first."""

    exported_at: datetime
    conversations: list[Transcript]


class UsageFigures(BaseModel):
    conversations: int = Field(description="Conversations started.")
    questions: int
    prompt_tokens: int = Field(description="Input tokens, cached ones included.")
    completion_tokens: int
    cached_tokens: int = Field(0, description="Prompt tokens read from the provider's cache.")
    cache_write_tokens: int = Field(0, description="Prompt tokens written to its cache.")
    cost_usd: float = Field(description="Estimated from LLM_*_PRICE_PER_MTOK.")
    cost_saved_usd: float = Field(
        0.0,
        description="Prompt caching's saving: the same tokens at LLM_PROMPT_PRICE_PER_MTOK, "
        "less cost_usd (negative when cache writes cost more than the reads saved).",
    )


class DayStats(UsageFigures):
    day: date


class FrequentQuestion(BaseModel):
    question: str = Field(description="Lower-cased, spaces collapsed, final punctuation removed.")
    count: int


class Answering(BaseModel):
    """What answers visitors now, as the dashboard shows it."""

    mode: str = Field(
        description="`model`, `resume_excerpt` (no model configured) or `unavailable`, "
        "as /health/ready reports it."
    )
    models: list[str] = Field(
        description="LLM_MODEL, then LLM_FALLBACK_MODELS; empty while no model is configured."
    )


class Stats(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2025-04-02",
                    "until": "2025-05-01",
                    "prompt_price_per_mtok": 0.15,
                    "completion_price_per_mtok": 0.6,
                    "cached_input_price_per_mtok": 0.075,
                    "cache_write_price_per_mtok": 0.15,
                    "days": [
                        {
                            "day": "2025-05-01",
                            "conversations": 4,
                            "questions": 9,
                            "prompt_tokens": 15200,
                            "completion_tokens": 1300,
                            "cached_tokens": 12000,
                            "cache_write_tokens": 0,
                            "cost_usd": 0.00216,
                            "cost_saved_usd": 0.0009,
                        }
                    ],
                    "totals": {
                        "conversations": 4,
                        "questions": 9,
                        "prompt_tokens": 15200,
                        "completion_tokens": 1300,
                        "cached_tokens": 12000,
                        "cache_write_tokens": 0,
                        "cost_usd": 0.00216,
                        "cost_saved_usd": 0.0009,
                    },
                    "top_questions": [{"question": "what does she work on", "count": 3}],
                    "answering": {"mode": "model", "models": ["openai/gpt-4o-mini"]},
                }
            ]
        }
    )

    since: date = Field(description="First UTC day counted.")
    until: date = Field(description="Last UTC day counted (today).")
    prompt_price_per_mtok: float
    completion_price_per_mtok: float
    cached_input_price_per_mtok: float | None = None
    cache_write_price_per_mtok: float | None = None
    days: list[DayStats] = Field(description="Every day in the range, oldest first.")
    totals: UsageFigures
    top_questions: list[FrequentQuestion] = Field(description="The ten most frequent.")
    answering: Answering
    leads: int = Field(0, description="Leads (contact details) left in the range.")
    gaps: int = Field(
        0, description="Distinct unanswered questions asked in the range (GET /api/admin/gaps)."
    )
