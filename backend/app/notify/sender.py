"""The outbox: enqueue notifications in the caller's transaction; deliver them in the background.

`Outbox.enqueue` writes one row per configured channel in the same transaction as what
it announces (a lead), so a notification exists exactly when its lead does; `wake()`
after the commit starts delivery at once. The sender claims due rows with a lease
(`OutboxRepository.claim`), delivers them outside any transaction, and records the
outcome: delivered, or tried again after a jittered exponential wait capped at
NOTIFY_RETRY_MAX_SECONDS, or given up after NOTIFY_GIVE_UP_HOURS. Every instance runs a
sender, and one sends at a time: nothing is claimed while another's leases run. Failures
are logged and counted (`resume_chat_notifications{outcome="failed"}`).
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import StartupError, StorageUnavailableError
from app.core.logger import get_logger
from app.core.metrics import Metrics
from app.core.tasks import running_in_background
from app.db.base import utcnow
from app.db.engine import Database, transaction
from app.notify.message import Delivery, DeliveryError, Notification
from app.notify.repository import OutboxRepository
from app.notify.webhook import WebhookChannel

logger = get_logger(__name__)

BATCH = 20
FIRST_RETRY_SECONDS = 2.0


class Channel(Protocol):
    name: str

    async def deliver(self, delivery: Delivery, now: datetime) -> None: ...


def channels_from_settings(settings: Settings, http: httpx.AsyncClient) -> dict[str, Channel]:
    """The configured channels by name; none when nothing is configured."""
    channels: dict[str, Channel] = {}
    if settings.notify_webhook_url:
        secret = settings.notify_webhook_secret
        channels["webhook"] = WebhookChannel(
            http,
            settings.notify_webhook_url,
            secret.get_secret_value() if secret else None,
            settings.notify_timeout_seconds,
        )
    if settings.notify_email_to:
        if not settings.smtp_host:
            raise StartupError("NOTIFY_EMAIL_TO is set but SMTP_HOST is not: set both.")
        from app.notify.mail import EmailChannel  # the SMTP client loads only for e-mail

        channels["email"] = EmailChannel(settings)
    return channels


class Outbox:
    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = list(channels)
        self._wake = asyncio.Event()

    async def enqueue(self, db: AsyncSession, notification: Notification) -> None:
        """Add the notification for every channel, in the caller's transaction."""
        await OutboxRepository(db).add(notification, self.channels, utcnow())

    def wake(self) -> None:
        """Deliver now rather than at the next poll (call after the commit)."""
        self._wake.set()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()


class OutboxSender:
    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._channels = channels
        self._timeout = settings.notify_timeout_seconds
        self._lease = timedelta(seconds=2 * settings.notify_timeout_seconds + 5)
        self._retry_max = settings.notify_retry_max_seconds
        self._poll = settings.notify_poll_seconds
        self._give_up = timedelta(hours=settings.notify_give_up_hours)
        self._metrics = metrics

    async def run(self) -> None:
        """Deliver what is due, then wait for a wake-up, a retry falling due, or the poll."""
        while True:
            wait = self._poll
            try:
                soonest = await self.deliver_due()
            except StorageUnavailableError:
                logger.warning("notifications: the database is unavailable; trying again later")
            else:
                if soonest is not None:
                    wait = max(0.05, min(wait, soonest))
            await self._outbox.wait(wait)

    async def deliver_due(self) -> float | None:
        """Deliver every due notification; seconds until the soonest retry, if any."""
        soonest: float | None = None
        while True:
            now = utcnow()
            async with transaction(self._database) as db:
                claimed = await OutboxRepository(db).claim(now, now + self._lease, BATCH)
            waits = await asyncio.gather(*(self._deliver(delivery) for delivery in claimed))
            for wait in waits:
                if wait is not None:
                    soonest = wait if soonest is None else min(soonest, wait)
            if len(claimed) < BATCH:
                return soonest

    async def _deliver(self, delivery: Delivery) -> float | None:
        """One attempt; returns seconds until the next attempt when it is to be retried."""
        channel = self._channels.get(delivery.channel)
        try:
            if channel is None:
                raise DeliveryError(f"the {delivery.channel} channel is no longer configured")
            async with asyncio.timeout(self._timeout):
                await channel.deliver(delivery, utcnow())
        except (DeliveryError, TimeoutError) as exc:
            return await self._failed(delivery, str(exc) or "timed out")
        now = utcnow()
        async with transaction(self._database) as db:
            await OutboxRepository(db).delivered(delivery.id, now)
        latency = (now - delivery.created_at).total_seconds()
        self._metrics.notification(delivery.channel, "delivered", latency)
        logger.info(
            "notification %s delivered by %s after %d attempt(s), %.2f s after it was created",
            delivery.key, delivery.channel, delivery.attempts, latency,
        )  # fmt: skip
        return None

    async def _failed(self, delivery: Delivery, error: str) -> float | None:
        now = utcnow()
        wait = self._backoff(delivery.attempts)
        gives_up = now + timedelta(seconds=wait) - delivery.created_at > self._give_up
        async with transaction(self._database) as db:
            repository = OutboxRepository(db)
            if gives_up:
                await repository.failed(delivery.id, now, error)
            else:
                await repository.retry_at(delivery.id, now + timedelta(seconds=wait), error)
        self._metrics.notification(delivery.channel, "gave_up" if gives_up else "failed")
        if gives_up:
            logger.error(
                "notification %s: giving up after %d attempts: %s",
                delivery.key, delivery.attempts, error,
            )  # fmt: skip
            return None
        logger.warning(
            "notification %s: attempt %d failed (%s); next in %.1f s",
            delivery.key, delivery.attempts, error, wait,
        )  # fmt: skip
        return wait

    def _backoff(self, attempts: int) -> float:
        """2, 4, 8... seconds, capped, each with up to a fifth of jitter either way."""
        wait = min(self._retry_max, FIRST_RETRY_SECONDS * 2.0 ** min(attempts - 1, 30))
        return wait * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not a secret)


@contextlib.asynccontextmanager
async def sending(sender: OutboxSender | None) -> AsyncIterator[None]:
    """Run the sender in the background for the block (nothing when no channel is set)."""
    if sender is None:
        yield
        return
    async with running_in_background(sender.run(), name="notifications"):
        yield
