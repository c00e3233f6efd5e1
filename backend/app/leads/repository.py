"""The SQL of leads and knowledge gaps. Repositories flush; the caller owns the transaction."""

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Table, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import insert_for
from app.db.tables import Conversation, KnowledgeGap, Lead
from app.leads.schemas import GapItem, LeadItem

CONVERSATIONS = cast(Table, Conversation.__table__)
LEADS = cast(Table, Lead.__table__)
GAPS = cast(Table, KnowledgeGap.__table__)
_LEAD_COLUMNS = (
    Lead.id,
    Lead.conversation_id.label("session_id"),
    Lead.name,
    Lead.email,
    Lead.company,
    Lead.message,
    Lead.source,
    Lead.created_at,
)


def _insert(session: AsyncSession, table: Table) -> Any:
    return insert_for(session.get_bind().dialect.name, table)


class LeadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def conversation_exists(self, conversation_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(Conversation.id).where(Conversation.id == conversation_id)
        )
        return found is not None

    async def ensure_conversation(
        self, conversation_id: uuid.UUID, client_key: str, at: datetime
    ) -> None:
        """Store an empty conversation under this id unless there is one already."""
        statement = (
            _insert(self.session, CONVERSATIONS)
            .values(
                id=conversation_id,
                client_key=client_key,
                question_count=0,
                tokens_used=0,
                created_at=at,
                updated_at=at,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        await self.session.execute(statement)

    async def add(self, lead: LeadItem) -> None:
        values = lead.model_dump(exclude={"session_id"}) | {"conversation_id": lead.session_id}
        await self.session.execute(LEADS.insert().values(values))

    async def find_email(self, conversation_id: uuid.UUID, email: str) -> uuid.UUID | None:
        """A lead of this conversation with this e-mail (in any case), if there is one."""
        return await self.session.scalar(
            select(Lead.id).where(
                Lead.conversation_id == conversation_id,
                func.lower(Lead.email) == email.lower(),
            )
        )

    async def count_for(self, conversation_id: uuid.UUID, source: str) -> int:
        count = await self.session.scalar(
            select(func.count()).where(
                Lead.conversation_id == conversation_id, Lead.source == source
            )
        )
        return int(count or 0)

    async def page(
        self, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> list[LeadItem]:
        """Newest first (then id), starting after the keyset `after`."""
        query = select(*_LEAD_COLUMNS)
        if after is not None:
            at, last_id = after
            query = query.where(
                or_(Lead.created_at < at, and_(Lead.created_at == at, Lead.id < last_id))
            )
        rows = await self.session.execute(
            query.order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit)
        )
        return [LeadItem.model_validate(row._mapping) for row in rows]

    async def for_conversation(self, conversation_id: uuid.UUID) -> list[LeadItem]:
        rows = await self.session.execute(
            select(*_LEAD_COLUMNS)
            .where(Lead.conversation_id == conversation_id)
            .order_by(Lead.created_at, Lead.id)
        )
        return [LeadItem.model_validate(row._mapping) for row in rows]

    async def count_since(self, since: datetime) -> int:
        count = await self.session.scalar(select(func.count()).where(Lead.created_at >= since))
        return int(count or 0)


class GapRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: str, question: str, at: datetime) -> None:
        """Count one asking of the gap `key`; its first wording is the one kept."""
        statement = _insert(self.session, GAPS).values(
            key=key, question=question, count=1, first_asked_at=at, last_asked_at=at
        )
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"count": GAPS.c.count + 1, "last_asked_at": statement.excluded.last_asked_at},
        )
        await self.session.execute(statement)

    async def listing(self, order: Literal["recent", "count"], limit: int) -> list[GapItem]:
        gap = KnowledgeGap
        ordering = (
            (gap.last_asked_at.desc(), gap.count.desc())
            if order == "recent"
            else (gap.count.desc(), gap.last_asked_at.desc())
        )
        rows = await self.session.execute(
            select(gap.question, gap.count, gap.last_asked_at)
            .order_by(*ordering, gap.id.desc())
            .limit(limit)
        )
        return [GapItem.model_validate(row._mapping) for row in rows]

    async def count_since(self, since: datetime) -> int:
        """Distinct gaps asked (last) since then."""
        count = await self.session.scalar(
            select(func.count()).where(KnowledgeGap.last_asked_at >= since)
        )
        return int(count or 0)

    async def first_asked(self, start: datetime, end: datetime) -> AsyncIterator[GapItem]:
        """Gaps first asked in [start, end), most asked first."""
        gap = KnowledgeGap
        rows = await self.session.stream(
            select(gap.question, gap.count, gap.last_asked_at)
            .where(gap.first_asked_at >= start, gap.first_asked_at < end)
            .order_by(gap.count.desc(), gap.id)
        )
        async for row in rows:
            yield GapItem.model_validate(row._mapping)
