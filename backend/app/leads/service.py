"""Leads and knowledge gaps: the form, the model's tools, and the owner's lists.

A lead is stored with its notifications in one short transaction (the outbox), so the
owner hears of every lead once it exists and of none that does not; delivery happens
in the background and never delays the visitor.
"""

import hashlib
import unicodedata
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal

from app.chat.turns import Client
from app.core.cursor import decode_cursor, encode_cursor
from app.core.errors import AppError, StorageUnavailableError
from app.core.logger import get_logger
from app.core.metrics import Metrics
from app.db.base import utcnow
from app.db.engine import Database, transaction
from app.leads.notifications import lead_created
from app.leads.repository import GapRepository, LeadRepository
from app.leads.schemas import (
    ContactArguments,
    ContactForm,
    GapItem,
    LeadItem,
    LeadPage,
    QuestionArguments,
    Source,
)
from app.limits.limiter import RateLimiter
from app.notify.sender import Outbox

logger = get_logger(__name__)

MAX_MODEL_LEADS = 3  # per conversation: the model may be talked into recording junk
EXPORT_PAGE = 500
MAX_GAP_CHARS = 500


class TooManyLeadsError(AppError):
    code = "too_many_leads"
    status_code = 429
    default_message = "This conversation has recorded enough contact details already."


def gap_key(question: str) -> str:
    """Questions differing only in case, spacing or punctuation share one key."""
    folded = "".join(
        " " if unicodedata.category(char)[0] in "PZS" else char
        for char in unicodedata.normalize("NFKC", question).casefold()
    )
    normalised = " ".join(folded.split()) or question.strip()
    return hashlib.sha256(normalised.encode()).hexdigest()


class LeadService:
    def __init__(
        self,
        database: Database,
        limiter: RateLimiter,
        metrics: Metrics,
        outbox: Outbox | None = None,
        base_url: str | None = None,
    ) -> None:
        self._database = database
        self._limiter = limiter
        self._metrics = metrics
        self._outbox = outbox
        self._base_url = base_url

    async def submit_form(
        self, session_id: uuid.UUID, form: ContactForm, client: Client
    ) -> uuid.UUID:
        """Store the form's lead; an unknown session id is stored as an empty conversation.

        A filled honeypot gets an id as usual, but nothing is stored or sent.
        """
        await self._limiter.check_contact(client.network)
        if form.website:
            self._metrics.refused("contact_honeypot")
            logger.info("contact form: honeypot filled; nothing stored")
            return uuid.uuid4()
        async with transaction(self._database) as db:
            known = await LeadRepository(db).conversation_exists(session_id)
        if not known:
            await self._limiter.check_new_session(client.network)
        lead = _lead(session_id, form.email, form.name, form.company, form.message, "form")
        await self._store(lead, client_key=client.key)
        return lead.id

    async def record_contact(self, conversation_id: uuid.UUID, args: ContactArguments) -> str:
        """The `record_contact` tool: a sentence for the model about what happened."""
        async with transaction(self._database) as db:
            repository = LeadRepository(db)
            if await repository.find_email(conversation_id, args.email) is not None:
                return "These contact details were already recorded; the owner has them."
            if await repository.count_for(conversation_id, "model") >= MAX_MODEL_LEADS:
                raise TooManyLeadsError()
        lead = _lead(conversation_id, args.email, args.name, args.company, args.message, "model")
        await self._store(lead)
        return "Recorded. The owner has been notified and can reply to that e-mail address."

    async def record_question(self, _conversation_id: uuid.UUID, args: QuestionArguments) -> str:
        """The `record_unanswered_question` tool."""
        await self.add_gap(args.question)
        return "Noted for the owner. Tell the visitor the resume does not say."

    async def add_gap(self, question: str) -> None:
        shown = " ".join(question.split())[:MAX_GAP_CHARS]
        async with transaction(self._database) as db:
            await GapRepository(db).add(gap_key(shown), shown, utcnow())

    async def record_gap(self, question: str) -> None:
        """`add_gap` for an answer already given: a storage failure is only logged."""
        try:
            await self.add_gap(question)
        except StorageUnavailableError:
            logger.warning("could not note an unanswered question: storage unavailable")

    async def _store(self, lead: LeadItem, client_key: str | None = None) -> None:
        async with transaction(self._database) as db:
            repository = LeadRepository(db)
            if client_key is not None:  # the form: the conversation may not be stored yet
                await repository.ensure_conversation(lead.session_id, client_key, lead.created_at)
            await repository.add(lead)
            if self._outbox is not None:
                await self._outbox.enqueue(db, lead_created(lead, self._base_url))
        if self._outbox is not None:
            self._outbox.wake()
        logger.info("lead %s stored (source %s)", lead.id, lead.source)

    async def page(self, limit: int, cursor: str | None = None) -> LeadPage:
        after = decode_cursor(cursor) if cursor else None
        async with transaction(self._database) as db:
            rows = await LeadRepository(db).page(limit + 1, after)
        more = len(rows) > limit
        rows = rows[:limit]
        return LeadPage(
            items=rows,
            next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more else None,
        )

    async def every_lead(self) -> AsyncIterator[LeadItem]:
        """All leads, newest first, a page in memory at a time (for the CSV export)."""
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            async with transaction(self._database) as db:
                rows = await LeadRepository(db).page(EXPORT_PAGE, after)
            for row in rows:
                yield row
            if len(rows) < EXPORT_PAGE:
                return
            after = (rows[-1].created_at, rows[-1].id)

    async def gaps(self, order: Literal["recent", "count"], limit: int) -> list[GapItem]:
        async with transaction(self._database) as db:
            return await GapRepository(db).listing(order, limit)


def _lead(
    session_id: uuid.UUID,
    email: str,
    name: str | None,
    company: str | None,
    message: str | None,
    source: Source,
) -> LeadItem:
    return LeadItem(
        id=uuid.uuid4(),
        session_id=session_id,
        name=name,
        email=email,
        company=company,
        message=message,
        source=source,
        created_at=utcnow(),
    )
