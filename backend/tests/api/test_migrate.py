"""Start-up migrations: Alembic runs only when the schema is behind its scripts."""

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
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
    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.attributes["connection"] = connection
    command.downgrade(config, "-1")


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
