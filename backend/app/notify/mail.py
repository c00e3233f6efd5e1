"""The e-mail channel: one message per notification through SMTP (aiosmtplib).

SMTP_STARTTLS=true requires the server to upgrade the connection (and refuses to send
otherwise); port 465 means TLS from the first byte instead. The lead's address goes in
Reply-To, so the owner can answer a recruiter straight from the e-mail.
"""

import email.utils
from datetime import datetime
from email.message import EmailMessage

import aiosmtplib

from app.core.config import Settings
from app.notify.message import Delivery, DeliveryError

IMPLICIT_TLS_PORT = 465


def email_message(delivery: Delivery, sender: str, recipients: list[str]) -> EmailMessage:
    payload = delivery.payload
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = payload["subject"]
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    if payload.get("reply_to"):
        message["Reply-To"] = payload["reply_to"]
    message["X-Resume-Chat-Delivery"] = delivery.key
    message.set_content(payload["body"])
    return message


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._username = settings.smtp_username
        password = settings.smtp_password
        self._password = password.get_secret_value() if password else None
        self._starttls = settings.smtp_starttls and settings.smtp_port != IMPLICIT_TLS_PORT
        self._sender = settings.notify_email_from
        self._recipients = settings.notify_email_to
        self._timeout = settings.notify_timeout_seconds

    async def deliver(self, delivery: Delivery, now: datetime) -> None:
        message = email_message(delivery, self._sender, self._recipients)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._port == IMPLICIT_TLS_PORT,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {self._host}:{self._port} failed: {exc}") from exc
