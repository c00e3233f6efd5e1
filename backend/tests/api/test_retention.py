"""RETENTION_DAYS: idle conversations are deleted in the app (the command line: tests/system)."""

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.core.config import Settings
from app.db.tables import Conversation, Message
from app.upkeep.retention import purge_idle
from tests.api.test_admin import converse, database, set_times
from tests.conftest import SettingsFactory
from tests.support.app import running_app


async def stored(settings: Settings) -> tuple[set[str], set[str]]:
    """The ids of the stored conversations, and of those that still have messages."""
    async with database(settings) as store, store.begin() as db:
        conversations = await db.scalars(select(Conversation.id))
        with_messages = await db.scalars(select(Message.conversation_id).distinct())
        return {str(i) for i in conversations}, {str(i) for i in with_messages}


async def three_conversations(settings: Settings) -> list[str]:
    """Chatted now, then made idle for 10 days, 3 days and (the last) not at all."""
    async with running_app(settings) as port:
        ids = [(await converse(port, f"Question {n}?"))[0] for n in range(3)]
    now = datetime.now(UTC)
    await set_times(settings, {ids[0]: now - timedelta(days=10), ids[1]: now - timedelta(days=3)})
    return ids


async def test_purge_deletes_only_conversations_idle_for_longer(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    ids = await three_conversations(settings)
    async with database(settings) as store:
        first = await purge_idle(store, days=5)
        after_first = await stored(settings)
        second = await purge_idle(store, days=2)
        again = await purge_idle(store, days=2)
        later = await purge_idle(store, days=2, now=datetime.now(UTC) + timedelta(days=3))
    assert (first, after_first) == (1, ({ids[1], ids[2]}, {ids[1], ids[2]}))
    assert (second, again, later) == (1, 0, 1)
    assert await stored(settings) == (set(), set())


async def test_the_app_purges_on_a_schedule(make_settings: SettingsFactory) -> None:
    settings = make_settings(retention_days=5, retention_check_hours=0.1 / 3600)
    async with running_app(settings) as port:
        ids = [(await converse(port, f"Question {n}?"))[0] for n in range(3)]
        await set_times(settings, {ids[0]: datetime.now(UTC) - timedelta(days=6)})
        async with asyncio.timeout(5):
            while True:
                if ids[0] not in (await stored(settings))[0]:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few more rounds: nothing else goes
        assert await stored(settings) == ({ids[1], ids[2]}, {ids[1], ids[2]})
