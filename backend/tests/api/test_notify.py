"""Notifications of new leads: a real webhook receiver and a real SMTP server (aiosmtpd)."""

import asyncio
import email
import email.policy
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select, update

from app.db.tables import KnowledgeGap, OutboxMessage
from app.leads.digest import enqueue_digest
from app.notify.sender import Outbox
from tests.api.test_admin import TOKEN, database
from tests.api.test_leads import FORM, NO_MODEL, send
from tests.conftest import SettingsFactory
from tests.support.app import free_port, running_app
from tests.support.chat_client import chat
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver

DELIVERED = 'resume_chat_notifications_total{channel="webhook",outcome="delivered"}'
FAILED = 'resume_chat_notifications_total{channel="webhook",outcome="failed"}'
GAVE_UP = 'resume_chat_notifications_total{channel="webhook",outcome="gave_up"}'
QUICK = {"notify_retry_max_seconds": 0.3, "notify_poll_seconds": 0.2, "notify_timeout_seconds": 2}


async def outbox_rows(settings: Any) -> list[OutboxMessage]:
    async with database(settings) as store, store.begin() as db:
        return list(await db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def metric(port: int, name: str) -> float:
    """The sum of a metric's samples (all labels) on the app's /metrics."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def logged(capsys: pytest.CaptureFixture[str], level: str, logger: str) -> list[str]:
    """The messages the app logged (to stderr, as it runs) at `level` from `logger`."""
    lines = capsys.readouterr().err.splitlines()
    return [line.split("] ", 1)[1] for line in lines if f" {level} " in line and logger in line]


async def wait_for_metric(port: int, name: str, value: float) -> None:
    async with asyncio.timeout(10):
        while True:
            if await metric(port, name) >= value:
                return
            await asyncio.sleep(0.05)


async def test_a_receiver_that_is_down_gets_the_lead_when_it_comes_back(
    make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    hook_port = free_port()
    url = f"http://127.0.0.1:{hook_port}/hook"
    settings = make_settings(notify_webhook_url=url, notify_webhook_secret="s3cret", **QUICK)
    async with running_app(settings) as port:
        # Accepted while the receiver is down: delivery happens later, in the background.
        assert (await send(port, str(uuid.uuid4()), FORM)).status_code == 201
        await asyncio.sleep(1.0)  # nobody listens: connection refused, again and again
        refused = await metric(port, FAILED)
        receiver = WebhookReceiver(statuses=[503])  # back, but not quite ready
        async with webhook_receiver(receiver, port=hook_port) as hook:
            await hook.wait_for(1)
            await wait_for_metric(port, DELIVERED, 1)
    [row] = await outbox_rows(settings)

    assert refused >= 2
    failures = logged(capsys, "WARNING", "app.notify.sender")
    assert f"notification {row.key}: attempt 1 failed (webhook unreachable" in failures[0]
    assert any("webhook answered HTTP 503" in failure for failure in failures)
    assert [a.headers["x-resume-chat-delivery"] for a in hook.attempts] == [row.key] * 2
    [delivery] = hook.received
    assert delivery.signed_with("s3cret")
    assert delivery.json["lead"]["email"] == FORM["email"]
    assert row.delivered_at is not None
    assert row.attempts >= 4
    assert row.last_error is None


async def test_two_instances_deliver_each_lead_once(make_settings: SettingsFactory) -> None:
    async with webhook_receiver() as hook:
        often = QUICK | {"notify_poll_seconds": 0.05}
        settings = make_settings(notify_webhook_url=hook.url, **often)
        async with running_app(settings) as first, running_app(settings) as second:
            for index in range(24):
                port = (first, second)[index % 2]
                assert (await send(port, str(uuid.uuid4()), FORM)).status_code == 201
            await hook.wait_for(24)
            await asyncio.sleep(0.5)  # room for a duplicate to show up
            split = [await metric(port, DELIVERED) for port in (first, second)]

    ids = [received.json["id"] for received in hook.received]
    assert len(ids) == len(set(ids)) == 24
    assert all("x-resume-chat-signature" not in r.headers for r in hook.received)  # no secret
    assert sum(split) == 24
    print("deliveries per instance:", split)


async def test_one_instance_sends_at_a_time(make_settings: SettingsFactory) -> None:
    """While one instance's delivery is under way, another sends nothing, not even the
    lead it stored itself; it takes over once the first is done."""
    async with webhook_receiver(WebhookReceiver(hold_next=True)) as hook:
        timing = QUICK | {"notify_poll_seconds": 0.05, "notify_timeout_seconds": 5}
        settings = make_settings(notify_webhook_url=hook.url, **timing)
        async with running_app(settings) as first, running_app(settings) as second:
            assert (await send(first, str(uuid.uuid4()), FORM)).status_code == 201
            await hook.wait_for(1, answered=False)  # held, unanswered, by the receiver
            assert (await send(second, str(uuid.uuid4()), FORM)).status_code == 201
            await asyncio.sleep(1.0)  # twenty polls of the second instance
            while_held = len(hook.attempts)
            hook.release()
            await hook.wait_for(2)
            # Each instance counts its delivery once the receiver has answered it.
            async with asyncio.timeout(10):
                while True:
                    split = [await metric(port, DELIVERED) for port in (first, second)]
                    if sum(split) >= 2:
                        break
                    await asyncio.sleep(0.05)

    assert while_held == 1
    assert len({received.json["id"] for received in hook.received}) == 2
    assert sum(split) == 2


async def test_a_receiver_that_never_answers_is_given_up_on_loudly(
    make_settings: SettingsFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with webhook_receiver() as hook:
        hook.statuses = [500] * 1000
        give_up = {"notify_give_up_hours": 1.5 / 3600}  # a second and a half
        settings = make_settings(notify_webhook_url=hook.url, **QUICK, **give_up)
        async with running_app(settings) as port:
            assert (await send(port, str(uuid.uuid4()), FORM)).status_code == 201
            await wait_for_metric(port, GAVE_UP, 1)
            failed = await metric(port, FAILED)
            await asyncio.sleep(0.5)  # nothing more is tried
            tried = len(hook.attempts)
            await asyncio.sleep(0.5)
            assert len(hook.attempts) == tried
    [row] = await outbox_rows(settings)

    assert failed == row.attempts - 1 >= 1
    assert row.delivered_at is None
    assert row.failed_at is not None
    assert row.last_error == "webhook answered HTTP 500"
    [gave_up] = logged(capsys, "ERROR", "app.notify.sender")
    assert gave_up.startswith(f"notification {row.key}: giving up after")


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.logins: list[str] = []
        self.encrypted: list[bool] = []  # per message: whether it came over TLS

    async def handle_DATA(  # noqa: N802 (aiosmtpd's name)
        self, _server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.encrypted.append(session.ssl is not None)
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"bot", b"pw")
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


@asynccontextmanager
async def smtp_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[Mailbox, int]]:
    """aiosmtpd on loopback; with `tls`, it offers STARTTLS and requires it (and TLS for
    logging in) before it takes a message."""
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox.authenticate,
        tls_context=tls, require_starttls=tls is not None, auth_require_tls=tls is not None,
    )  # fmt: skip
    await asyncio.to_thread(controller.start)
    try:
        yield mailbox, port
    finally:
        await asyncio.to_thread(controller.stop)


async def wait_until(check: Any) -> None:
    async with asyncio.timeout(10):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


async def test_an_email_per_lead_through_a_real_smtp_server(make_settings: SettingsFactory) -> None:
    async with smtp_server() as (mailbox, smtp_port):
        settings = make_settings(
            admin_token=TOKEN,
            notify_email_to="maya@example.com, recruiting@example.com",
            notify_email_from="Resume chat <chat@example.com>",
            smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_username="bot", smtp_password="pw",
            smtp_starttls=False, public_base_url="https://chat.example.com", **QUICK,
        )  # fmt: skip
        session = str(uuid.uuid4())
        async with running_app(settings) as port:
            assert (await send(port, session, FORM)).status_code == 201
            await wait_until(lambda: mailbox.messages)
    [message] = mailbox.messages

    assert mailbox.logins == ["bot"]
    assert message["To"] == "maya@example.com, recruiting@example.com"
    assert message["From"] == "Resume chat <chat@example.com>"
    assert message["Reply-To"] == "jane@acme.example"
    assert message["Subject"] == "New contact from your resume chat: Jane Doe (Acme)"
    body = message.get_content()
    assert "E-mail:   jane@acme.example" in body
    assert "Hi!" in body
    assert f"https://chat.example.com/api/admin/conversations/{session}" in body
    print(message.as_string())


async def test_starttls_is_required_when_asked_for(make_settings: SettingsFactory) -> None:
    async with smtp_server() as (mailbox, smtp_port):
        settings = make_settings(
            notify_email_to="maya@example.com", smtp_host="127.0.0.1", smtp_port=smtp_port,
            smtp_starttls=True, **QUICK,
        )  # fmt: skip
        async with running_app(settings) as port:
            assert (await send(port, str(uuid.uuid4()), FORM)).status_code == 201
            await asyncio.sleep(1.0)
    [row] = await outbox_rows(settings)

    assert mailbox.messages == []
    assert row.delivered_at is None
    assert row.attempts >= 1
    assert row.last_error is not None
    assert "STARTTLS" in row.last_error.upper()


async def test_an_email_goes_over_starttls_to_a_server_whose_certificate_is_trusted(
    make_settings: SettingsFactory,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SMTP_STARTTLS=true: the connection is upgraded, the certificate checked against the
    machine's trust store (here SSL_CERT_FILE, holding the test server's own), and only
    then are the login and the message sent."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*certificate)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    async with smtp_server(server_tls) as (mailbox, smtp_port):
        settings = make_settings(
            notify_email_to="maya@example.com", smtp_host="127.0.0.1", smtp_port=smtp_port,
            smtp_username="bot", smtp_password="pw", smtp_starttls=True, **QUICK,
        )  # fmt: skip
        async with running_app(settings) as port:
            assert (await send(port, str(uuid.uuid4()), FORM)).status_code == 201
            await wait_until(lambda: mailbox.messages)
    [row] = await outbox_rows(settings)

    assert mailbox.encrypted == [True]
    assert mailbox.logins == ["bot"]
    assert mailbox.messages[0]["Reply-To"] == "jane@acme.example"
    assert row.delivered_at is not None


async def test_a_daily_digest_of_new_unanswered_questions(make_settings: SettingsFactory) -> None:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    async with webhook_receiver() as hook:
        settings = make_settings(
            notify_webhook_url=hook.url, notify_gaps_digest_hour=3, **NO_MODEL, **QUICK
        )
        async with running_app(settings) as port, chat(port) as client:
            for question in ("Quantum chromodynamics?", "quantum  CHROMODYNAMICS", "Her cat?"):
                await client.ask(question)
            async with database(settings) as store:
                async with store.begin() as db:
                    moved = datetime.combine(yesterday, datetime.min.time(), UTC)
                    await db.execute(update(KnowledgeGap).values(first_asked_at=moved))
                outbox = Outbox(["webhook"])
                listed = [await enqueue_digest(store, outbox, yesterday) for _ in range(2)]
                await hook.wait_for(1)
                assert await enqueue_digest(store, outbox, yesterday - timedelta(1)) == 0
            await asyncio.sleep(0.5)  # no second digest for the same day

    assert listed == [2, 2]
    [digest] = hook.received
    body = digest.json
    assert body["event"] == "gaps.digest"
    assert body["day"] == yesterday.isoformat()
    assert [(gap["question"], gap["count"]) for gap in body["gaps"]] == [
        ("Quantum chromodynamics?", 2),
        ("Her cat?", 1),
    ]
    assert "2 new unanswered questions" in body["text"]
