"""`python -m app.cli purge`: the operator's command, run as its own process."""

import asyncio
import os
import sys
from pathlib import Path

from tests.api.test_retention import stored, three_conversations
from tests.conftest import SettingsFactory

BACKEND_DIR = Path(__file__).resolve().parents[2]


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
