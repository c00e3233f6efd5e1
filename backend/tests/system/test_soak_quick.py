"""The soak harness still works: `bench/soak.py --quick` end to end, and its check can fail."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from soak_checks import audit
from soak_visitors import Tally

from tests.conftest import TEST_DATABASE_URL

BACKEND = Path(__file__).resolve().parents[2]
BENCH = BACKEND.parent / "bench"
TIMEOUT_S = 150


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _server_url(database_url: str) -> str:
    """The PostgreSQL server of TEST_DATABASE_URL; the soak makes its own database there."""
    return database_url.rsplit("/", 1)[0].replace("+asyncpg", "") + "/postgres"


@pytest.mark.timeout(TIMEOUT_S + 30)
@pytest.mark.parametrize("database", DATABASES)
def test_quick_soak_loses_no_turn_and_reports_every_figure(tmp_path: Path, database: str) -> None:
    if database == "postgresql" and not TEST_DATABASE_URL:
        pytest.skip("set TEST_DATABASE_URL=postgresql+asyncpg://... to run PostgreSQL tests")
    server = "sqlite" if database == "sqlite" else _server_url(TEST_DATABASE_URL)
    command = [sys.executable, str(BENCH / "soak.py"), "--quick", "--database", server]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)],
        cwd=BACKEND,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    logs = "".join(log.read_text() for log in sorted((tmp_path / "logs" / "soak").glob("*.log")))
    assert done.returncode == 0, done.stdout + done.stderr + logs

    report = json.loads((tmp_path / "soak-latest.json").read_text())
    load, check = report["load"], report["database_check"]
    assert report["verdict"] == "pass"
    assert load["outcomes"]["answered"] > 0
    assert load["outcomes"]["llm_unavailable"] > 0  # faults injected (about 10 expected)
    assert load["asked"] == sum(load["outcomes"].values()) + load["unknown_endings"]
    assert check["lost_turns"] == check["stored_more_than_accepted"] == 0
    assert check["questions_stored"] == sum(check["answers_stored_by_ending"].values()) > 0
    assert report["rss"]["samples"] > 10
    assert isinstance(report["rss"]["slope_kb_per_min_second_half"], float)
    if database == "postgresql":
        assert set(report["db_connections"]) == {"idle"}
        assert 0 < report["db_connections"]["idle"] <= report["pool_idle_size"]
    assert "| lost turns | 0 " in (tmp_path / "soak-latest.md").read_text()
    assert "| questions asked |" in done.stdout


def test_the_check_counts_a_question_without_answer_and_one_never_stored() -> None:
    answered, unanswered, never_stored = (str(uuid.uuid4()) for _ in range(3))
    rows = [
        (answered, "user", None, None),
        (answered, "assistant", "stop", None),
        (unanswered, "user", None, None),
    ]
    tally = Tally()
    tally.accepted.update({answered: 1, unanswered: 1, never_stored: 1})

    check = audit(rows, tally)

    assert check["unanswered_questions"] == 1
    assert check["accepted_but_not_stored"] == 1
    assert check["lost_turns"] == 2
    assert check["answers_stored_by_ending"] == {"stop": 1}
