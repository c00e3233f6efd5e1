"""The app process killed (SIGKILL) while it delivers a notification: the next instance
delivers it again once the lease is over (at least once, never lost)."""

import asyncio
import time
import uuid

import httpx

from app.core.config import Settings
from app.db.tables import OutboxMessage
from tests.api.test_leads import FORM
from tests.api.test_notify import outbox_rows
from tests.support.app import uvicorn_process
from tests.support.webhook_receiver import webhook_receiver


async def delivered(settings: Settings) -> OutboxMessage:
    async with asyncio.timeout(10):
        while True:
            [row] = await outbox_rows(settings)
            if row.delivered_at is not None:
                return row
            await asyncio.sleep(0.1)


async def test_sigkill_during_delivery_delivers_after_restart(database_url: str) -> None:
    async with webhook_receiver() as hook:
        hook.hold_next = True  # the first delivery hangs until the app is killed
        settings = {
            "openrouter_api_key": "sk-test",
            "openrouter_base_url": "http://127.0.0.1:9/v1",  # never asked
            "database_url": database_url,
            "notify_webhook_url": hook.url,
            "notify_timeout_seconds": "2",  # the lease: 2 x 2 + 5 seconds
            "notify_poll_seconds": "0.5",
            "notify_retry_max_seconds": "1",
        }
        session = str(uuid.uuid4())
        async with uvicorn_process(**settings) as (port, process):
            async with httpx.AsyncClient() as http:
                url = f"http://127.0.0.1:{port}/api/sessions/{session}/contact"
                assert (await http.post(url, json=FORM)).status_code == 201
            await hook.wait_for(1, seconds=30, answered=False)  # in the middle of delivering
            process.kill()
            killed_at = time.monotonic()
            await process.wait()
        hook.release()  # answers the dead connection; the app never saw a reply
        async with uvicorn_process(**settings):
            print(f"restarted {time.monotonic() - killed_at:.1f} s after the kill")
            await hook.wait_for(2, seconds=90)  # a start-up takes long on a busy machine
            redelivered_after = time.monotonic() - killed_at
            row = await delivered(Settings(_env_file=None, database_url=database_url))
        [first, again] = hook.attempts

    assert first.headers["x-resume-chat-delivery"] == again.headers["x-resume-chat-delivery"]
    assert again.json["lead"]["session_id"] == session
    assert row.attempts == 2
    print(f"delivered again {redelivered_after:.1f} s after the kill")
