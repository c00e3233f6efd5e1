"""What the resume's owner and the operator see: conversations, exports and usage.

Each read or delete is its own short transaction; exports read a page of conversations
at a time, so memory stays bounded by one page and one conversation.
"""

import unicodedata
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import MINYEAR, UTC, date, datetime, time, timedelta
from typing import Any

from app.admin.repository import (
    PREVIEW_CHARS,
    AdminRepository,
    ConversationRow,
    DayUsage,
    Window,
)
from app.admin.schemas import (
    Answering,
    AnswerSource,
    ConversationPage,
    ConversationSummary,
    DayStats,
    FrequentQuestion,
    Stats,
    Transcript,
    TranscriptMessage,
    UsageFigures,
)
from app.core.config import Settings
from app.core.cursor import decode_cursor, encode_cursor
from app.core.errors import SessionNotFoundError
from app.core.logger import get_logger
from app.db.base import utcnow
from app.db.engine import Database, transaction
from app.leads.repository import GapRepository, LeadRepository

logger = get_logger(__name__)

EXPORT_PAGE = 100
TOP_QUESTIONS = 10


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; `cached` and `cache_write` for prompt tokens read from or
    written to the provider's prompt cache (they are part of the prompt tokens)."""

    prompt: float
    completion: float
    cached: float | None = None  # None: as `prompt`
    cache_write: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Prices":
        return cls(
            settings.llm_prompt_price_per_mtok,
            settings.llm_completion_price_per_mtok,
            settings.llm_cached_input_price_per_mtok,
            settings.llm_cache_write_price_per_mtok,
        )

    def cost(self, usage: DayUsage) -> float:
        """What the tokens cost, cached and cache-written prompt tokens at their prices."""
        cached = self.prompt if self.cached is None else self.cached
        write = self.prompt if self.cache_write is None else self.cache_write
        fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
        total = (
            max(fresh, 0) * self.prompt
            + usage.cached_tokens * cached
            + usage.cache_write_tokens * write
            + usage.completion_tokens * self.completion
        )
        return round(total / 1e6, 6)

    def saved(self, usage: DayUsage) -> float:
        """What caching saved: the cost of every prompt token at the prompt price, less cost."""
        uncached = replace(usage, cached_tokens=0, cache_write_tokens=0)
        return round(self.cost(uncached) - self.cost(usage), 6)


def window(since: date | None, until: date | None) -> Window:
    """Dates mean whole UTC days (`until` included); naive datetimes are UTC."""
    return Window(start=_start(since), end=_end(until))


def _start(since: date | None) -> datetime | None:
    if since is None:
        return None
    try:
        if isinstance(since, datetime):
            return _utc(since)
        return datetime.combine(since, time(), UTC)
    except OverflowError:  # beyond what datetime holds: before or after everything
        return None if since.year == MINYEAR else _LATEST


def _end(until: date | None) -> datetime | None:
    if until is None:
        return None
    try:
        if isinstance(until, datetime):
            return _utc(until) + timedelta(microseconds=1)  # the finest the databases store
        return datetime.combine(until + timedelta(days=1), time(), UTC)
    except OverflowError:
        return _EARLIEST if until.year == MINYEAR else None


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)


def normalise_question(question: str) -> str:
    """Lower-cased, whitespace collapsed, trailing punctuation (of any script) stripped."""
    text = " ".join(question.lower().split())
    end = len(text)
    while end and (text[end - 1] == " " or unicodedata.category(text[end - 1]).startswith("P")):
        end -= 1
    return text[:end] or text


class AdminService:
    def __init__(self, database: Database, prices: Prices) -> None:
        self._database = database
        self._prices = prices

    async def list_conversations(
        self,
        period: Window,
        limit: int,
        cursor: str | None = None,
        search: str | None = None,
        *,
        has_lead: bool | None = None,
    ) -> ConversationPage:
        after = decode_cursor(cursor) if cursor else None
        async with transaction(self._database) as db:
            rows = await AdminRepository(db).list_conversations(
                period, limit + 1, after, search=search, has_lead=has_lead
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return ConversationPage(
            items=[_summary(row) for row in rows],
            next_cursor=encode_cursor(rows[-1].updated_at, rows[-1].id) if more else None,
        )

    async def transcript(self, conversation_id: uuid.UUID) -> Transcript:
        async with transaction(self._database) as db:
            repository = AdminRepository(db)
            conversation = await repository.get_conversation(conversation_id)
            messages = await repository.list_messages(conversation_id)
            leads = await LeadRepository(db).for_conversation(conversation_id)
        if conversation is None:
            raise SessionNotFoundError("No conversation has that id.")
        return Transcript(
            id=conversation.id,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            question_count=conversation.question_count,
            tokens_used=conversation.tokens_used,
            messages=[TranscriptMessage.model_validate(m, from_attributes=True) for m in messages],
            leads=leads,
        )

    async def transcripts(self, period: Window) -> AsyncIterator[Transcript]:
        """Every conversation in the period, newest first, one page in memory at a time."""
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            async with transaction(self._database) as db:
                page = await AdminRepository(db).list_conversations(period, EXPORT_PAGE, after)
            for row in page:
                try:
                    transcript = await self.transcript(row.id)
                except SessionNotFoundError:
                    continue  # deleted since the page was read
                yield transcript
            if len(page) < EXPORT_PAGE:
                return
            after = (page[-1].updated_at, page[-1].id)

    async def delete(self, conversation_id: uuid.UUID) -> None:
        async with transaction(self._database) as db:
            deleted = await AdminRepository(db).delete_conversations([conversation_id])
        if not deleted:
            raise SessionNotFoundError("No conversation has that id.")
        logger.info("deleted conversation %s", conversation_id)

    async def stats(self, days: int, answering: Answering, now: datetime | None = None) -> Stats:
        """Usage per UTC day over the last `days` days, today included."""
        today = (now or utcnow()).date()
        first = today - timedelta(days=days - 1)
        since = datetime.combine(first, time(), UTC)
        questions: Counter[str] = Counter()
        async with transaction(self._database) as db:
            repository = AdminRepository(db)
            started = await repository.conversations_started_per_day(since)
            usage = {row.day: row for row in await repository.usage_per_day(since)}
            async for text, count in repository.question_counts(since):
                questions[normalise_question(text)] += count
            leads = await LeadRepository(db).count_since(since)
            gaps = await GapRepository(db).count_since(since)
        per_day = [
            self._day(day, started.get(day, 0), usage.get(day))
            for day in (first + timedelta(days=offset) for offset in range(days))
        ]
        ranked = sorted(questions.items(), key=lambda item: (-item[1], item[0]))
        return Stats(
            since=first,
            until=today,
            prompt_price_per_mtok=self._prices.prompt,
            completion_price_per_mtok=self._prices.completion,
            cached_input_price_per_mtok=self._prices.cached,
            cache_write_price_per_mtok=self._prices.cache_write,
            days=per_day,
            totals=self._totals(per_day),
            top_questions=[
                FrequentQuestion(question=text, count=count)
                for text, count in ranked[:TOP_QUESTIONS]
            ],
            answering=answering,
            leads=leads,
            gaps=gaps,
        )

    def _day(self, day: date, started: int, used: DayUsage | None) -> DayStats:
        return DayStats(day=day, **self._figures(started, used or DayUsage(day, 0, 0, 0)))

    def _totals(self, per_day: list[DayStats]) -> UsageFigures:
        total = DayUsage(
            per_day[0].day if per_day else date.min,
            *(sum(getattr(day, name) for day in per_day) for name in _SUMMED),
        )
        conversations = sum(day.conversations for day in per_day)
        return UsageFigures(**self._figures(conversations, total))

    def _figures(self, conversations: int, used: DayUsage) -> dict[str, Any]:
        return {
            "conversations": conversations,
            **{name: getattr(used, name) for name in _SUMMED},
            "cost_usd": self._prices.cost(used),
            "cost_saved_usd": self._prices.saved(used),
        }


# DayUsage's counts, in its order.
_SUMMED = ("questions", "prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens")


def _summary(row: ConversationRow) -> ConversationSummary:
    preview = row.first_question
    if preview is not None and len(preview) > PREVIEW_CHARS:
        preview = preview[: PREVIEW_CHARS - 1] + "…"
    return ConversationSummary(
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        question_count=row.question_count,
        tokens_used=row.tokens_used,
        first_question=preview,
        sources=_sources(row),
        lead_count=row.lead_count,
    )


def _sources(row: ConversationRow) -> list[AnswerSource]:
    sources: list[AnswerSource] = []
    if row.answered_by_model:
        sources.append("model")
    if row.answered_by_excerpts:
        sources.append("resume_excerpt")
    return sources
