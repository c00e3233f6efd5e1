"""Start-up migrations: Alembic runs only when the schema is behind its scripts."""

import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.core.config import BACKEND_DIR, Settings
from app.db import migrate
from app.db.engine import create_engine


def test_the_heads_read_from_the_scripts_are_alembics() -> None:
    scripts = ScriptDirectory.from_config(Config(str(BACKEND_DIR / "alembic.ini")))

    assert migrate.script_heads() == set(scripts.get_heads())


def test_scripts_of_an_unknown_shape_leave_the_decision_to_alembic(tmp_path: Path) -> None:
    (tmp_path / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (tmp_path / "0002_b.py").write_text('revision = "0002"\ndown_revision: str = "0001"\n')
    assert migrate.script_heads(tmp_path) == {"0002"}

    (tmp_path / "0003_c.py").write_text("REVISION = compute()\n")
    assert migrate.script_heads(tmp_path) is None


def downgrade_one(connection: Connection) -> None:
    downgrade_to(connection, "-1")


def downgrade_to(connection: Connection, revision: str) -> None:
    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_alembic_runs_only_when_the_schema_is_behind(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(Settings(_env_file=None, database_url=database_url))
    upgrades: list[object] = []
    upgrade = migrate._upgrade

    def counted(connection: object) -> None:
        upgrades.append(connection)
        upgrade(connection)  # type: ignore[arg-type]

    monkeypatch.setattr(migrate, "_upgrade", counted)
    try:
        await migrate.upgrade_database(engine)  # a new database
        await migrate.upgrade_database(engine)  # a restart: current
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_one)
        assert not await migrate.schema_is_current(engine)
        await migrate.upgrade_database(engine)  # behind
        current = await migrate.schema_is_current(engine)
    finally:
        await engine.dispose()

    assert len(upgrades) == 2
    assert current


async def test_0008_backfills_which_question_each_stored_answer_replies_to(
    database_url: str,
) -> None:
    engine = create_engine(Settings(_env_file=None, database_url=database_url))
    conversation = uuid.uuid4()
    key = conversation.hex if engine.dialect.name == "sqlite" else conversation
    # A question answered, one left without an answer, one answered, and a stray answer.
    roles = ["user", "assistant", "user", "user", "assistant", "assistant"]
    try:
        await migrate.upgrade_database(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0007")  # before reply_to
            await connection.execute(
                text(
                    "INSERT INTO conversations (id, question_count, tokens_used, created_at,"
                    " updated_at) VALUES (:id, 3, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": key},
            )
            for index, role in enumerate(roles, start=1):
                await connection.execute(
                    text(
                        "INSERT INTO messages (id, conversation_id, role, content, created_at)"
                        " VALUES (:id, :conversation, :role, 'text', CURRENT_TIMESTAMP)"
                    ),
                    {"id": index, "conversation": key, "role": role},
                )
        await migrate.upgrade_database(engine)
        async with engine.begin() as connection:
            rows = await connection.execute(text("SELECT id, reply_to FROM messages ORDER BY id"))
            replies = {row[0]: row[1] for row in rows.all()}
    finally:
        await engine.dispose()

    assert replies == {1: None, 2: 1, 3: None, 4: None, 5: 4, 6: None}
