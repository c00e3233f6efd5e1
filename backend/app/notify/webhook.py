"""The webhook channel: a signed JSON POST per notification (NOTIFY_WEBHOOK_URL).

The body is `{"event", "id", "sent_at", ...the notification's data, "text"}`; `id` stays
the same across attempts, so a receiver can drop repeats. With NOTIFY_WEBHOOK_SECRET the
raw body is signed as GitHub signs its webhooks: `X-Resume-Chat-Signature: sha256=<hex>`,
the HMAC-SHA256 of the exact bytes received. `X-Resume-Chat-Timestamp` (Unix seconds)
equals the signed body's `sent_at`, so a receiver can refuse old replays.
"""

import hashlib
import hmac
from datetime import datetime

import httpx
import orjson

from app.notify.message import Delivery, DeliveryError

SIGNATURE_HEADER = "X-Resume-Chat-Signature"
TIMESTAMP_HEADER = "X-Resume-Chat-Timestamp"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: compare in constant time (shown in docs/leads.md)."""
    return hmac.compare_digest(sign(secret, body), header)


def webhook_body(delivery: Delivery, sent_at: datetime) -> bytes:
    payload = delivery.payload
    fields = {
        "event": delivery.event,
        "id": delivery.key,
        "sent_at": int(sent_at.timestamp()),
        **payload["data"],
        "text": payload["text"],
    }
    return orjson.dumps(fields)


class WebhookChannel:
    name = "webhook"

    def __init__(
        self, http: httpx.AsyncClient, url: str, secret: str | None, timeout: float
    ) -> None:
        self._http = http
        self._url = url
        self._secret = secret
        self._timeout = httpx.Timeout(timeout)

    async def deliver(self, delivery: Delivery, now: datetime) -> None:
        body = webhook_body(delivery, now)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "resume-chat-notify/1",
            "X-Resume-Chat-Event": delivery.event,
            "X-Resume-Chat-Delivery": delivery.key,
            TIMESTAMP_HEADER: str(int(now.timestamp())),
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        try:
            response = await self._http.post(
                self._url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {exc!r}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook answered HTTP {response.status_code}")
