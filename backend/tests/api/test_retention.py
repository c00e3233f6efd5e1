"""RETENTION_DAYS: idle conversations are deleted in the app, and from the command line."""

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from app.core.config import Settings
from app.db.tables import Conversation, Message
from app.upkeep.retention import purge_idle
from tests.api.test_admin import converse, database, set_times
from tests.conftest import SettingsFactory
from tests.support.app import running_app

BACKEND_DIR = Path(__file__).resolve().parents[2]


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


async def run_cli(
    *args: str, database_url: str = "", retention_days: int = 0
) -> tuple[int, str, str]:
    env = os.environ | {"RETENTION_DAYS": str(retention_days)}
    if database_url:
        env["DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=BACKEND_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_purge_from_the_command_line(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ids = await three_conversations(settings)

    url = settings.database_url
    code, _, err = await run_cli("purge", database_url=url)
    assert code == 2
    assert "RETENTION_DAYS is 0" in err
    assert "--days" in err
    assert len((await stored(settings))[0]) == 3

    assert await run_cli("purge", database_url=url, retention_days=5) == (
        0,
        "Deleted 1 conversation idle for more than 5 days.\n",
        "",
    )
    assert await run_cli("purge", "--days", "1", database_url=url, retention_days=5) == (
        0,
        "Deleted 1 conversation idle for more than 1 day.\n",
        "",
    )
    assert await stored(settings) == ({ids[2]}, {ids[2]})


async def test_command_line_help_and_bad_input() -> None:
    code, out, _ = await run_cli("--help")
    assert (code, "purge" in out) == (0, True)
    code, out, _ = await run_cli("purge", "--help")
    assert (code, "--days N" in out) == (0, True)
    code, _, err = await run_cli("purge", "--days", "-3")
    assert (code, "cannot be negative" in err) == (2, True)
