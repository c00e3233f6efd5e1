"""The outbox's SQL. Repositories flush; the caller owns the transaction.

Claiming is one UPDATE that sets a lease (`claimed_until`) on due rows and returns them,
and claims nothing while any row's lease is running: one instance sends at a time, however
many share the database. Claims take turns on an advisory lock on PostgreSQL (SQLite runs
one write at a time). A claimed row is not due again until its lease ends, so an instance
killed mid-delivery only delays it: once the lease is over, any instance claims it again
(at least once, never lost).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Table, and_, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import insert_for
from app.db.tables import OutboxMessage
from app.notify.message import Delivery, Notification

OUTBOX = cast(Table, OutboxMessage.__table__)
# Any fixed number: instances that claim at the same moment take turns on it.
_CLAIM_LOCK = 7_262_811
_DELIVERY_COLUMNS = [
    OUTBOX.c[name]
    for name in ("id", "key", "channel", "event", "payload", "created_at", "attempts")
]


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, notification: Notification, channels: Sequence[str], at: datetime) -> None:
        """One row per channel; a key already there (the same event again) adds nothing."""
        if not channels:
            return
        payload = orjson.dumps(notification.payload()).decode()
        rows = [
            {
                "key": f"{notification.key}:{channel}",
                "channel": channel,
                "event": notification.event,
                "payload": payload,
                "lead_id": notification.lead_id,
                "created_at": at,
                "attempts": 0,
                "next_attempt_at": at,
            }
            for channel in channels
        ]
        insert = insert_for(self.session.get_bind().dialect.name, OUTBOX)
        statement = insert.values(rows).on_conflict_do_nothing(index_elements=["key"])
        await self.session.execute(statement)

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> list[Delivery]:
        """Lease up to `limit` due rows, oldest first, counting an attempt on each; none
        while another delivery's lease runs (another instance is sending)."""
        if self.session.get_bind().dialect.name == "postgresql":
            lock = text(f"SELECT pg_try_advisory_xact_lock({_CLAIM_LOCK})")
            if not await self.session.scalar(lock):
                return []  # another instance is claiming right now
        table = OUTBOX.c
        due = select(table.id).where(_due(now)).order_by(table.id).limit(limit)
        sending = exists().where(_unsettled(), table.claimed_until > now)
        statement = (
            update(OUTBOX)
            .where(table.id.in_(due.scalar_subquery()), _due(now), ~sending)
            .values(claimed_until=lease_until, attempts=table.attempts + 1)
            .returning(*_DELIVERY_COLUMNS)
        )
        rows = await self.session.execute(statement)
        return [
            Delivery(
                id=row.id,
                key=row.key,
                channel=row.channel,
                event=row.event,
                payload=orjson.loads(row.payload),
                created_at=row.created_at,
                attempts=row.attempts,
            )
            for row in rows
        ]

    async def delivered(self, delivery_id: int, at: datetime) -> None:
        await self._set(delivery_id, delivered_at=at, claimed_until=None, last_error=None)

    async def retry_at(self, delivery_id: int, at: datetime, error: str) -> None:
        await self._set(delivery_id, next_attempt_at=at, claimed_until=None, last_error=error)

    async def failed(self, delivery_id: int, at: datetime, error: str) -> None:
        """Given up on: kept, with the error, but never tried again."""
        await self._set(delivery_id, failed_at=at, claimed_until=None, last_error=error)

    async def pending(self) -> int:
        """Rows neither delivered nor given up on."""
        count = await self.session.scalar(select(func.count()).where(_unsettled()))
        return int(count or 0)

    async def for_lead(self, lead_id: uuid.UUID) -> list[OutboxMessage]:
        rows = await self.session.scalars(
            select(OutboxMessage).where(OutboxMessage.lead_id == lead_id).order_by(OutboxMessage.id)
        )
        return list(rows)

    async def _set(self, delivery_id: int, **values: Any) -> None:
        await self.session.execute(update(OUTBOX).where(OUTBOX.c.id == delivery_id).values(values))


def _unsettled() -> ColumnElement[bool]:
    return and_(OUTBOX.c.delivered_at.is_(None), OUTBOX.c.failed_at.is_(None))


def _due(now: datetime) -> ColumnElement[bool]:
    table = OUTBOX.c
    return and_(
        _unsettled(),
        table.next_attempt_at <= now,
        or_(table.claimed_until.is_(None), table.claimed_until <= now),
    )
