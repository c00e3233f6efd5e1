"""What a notification says, whatever carries it, and a claimed delivery of it."""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Notification:
    """One event for the owner. `key` is unique per event (enqueueing it twice adds nothing).

    `text` is a short paragraph (a chat message in Slack or Discord), `body` the e-mail's
    text, `data` the webhook's JSON fields besides `event`, `id`, `sent_at` and `text`.
    """

    event: str
    key: str
    subject: str
    text: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    lead_id: uuid.UUID | None = None
    reply_to: str | None = None

    def payload(self) -> dict[str, Any]:
        """What the outbox stores; `Delivery` reads it back."""
        return {
            "subject": self.subject,
            "text": self.text,
            "body": self.body,
            "data": self.data,
            "reply_to": self.reply_to,
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """A notification claimed for one channel; `attempts` counts this one."""

    id: int
    key: str
    channel: str
    event: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int


class DeliveryError(Exception):
    """A delivery attempt failed; it is tried again later. The message goes to the log."""
