"""The benchmark harness still works: `bench/run.py --quick` end to end, on SQLite."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2]
RUN = BACKEND.parent / "bench" / "run.py"
TIMEOUT_S = 150


@pytest.mark.timeout(TIMEOUT_S + 30)
def test_quick_benchmark_answers_every_question_and_reports_every_figure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(tmp_path)],
        cwd=BACKEND,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    logs = "".join(log.read_text() for log in sorted((tmp_path / "logs").glob("*.log")))
    assert done.returncode == 0, done.stdout + done.stderr + logs

    results = json.loads((tmp_path / "latest.json").read_text())
    assert [level["sessions"] for level in results["levels"]] == [1, 5]
    for level in results["levels"]:
        app, floor = level["app"], level["floor"]
        assert app["answered"] == app["asked"] == level["sessions"] > 0
        assert floor["answered"] == floor["asked"] == level["sessions"]
        assert app["errors"] == floor["errors"] == level["idle"]["errors"] == {}
        assert app["answers_per_s"] > 0
        assert floor["answers_per_s"] > 0
        for timing in (app["first_ms"], app["done_ms"], floor["first_ms"], floor["done_ms"]):
            assert timing["n"] == level["sessions"]
            assert 0 < timing["p50"] <= timing["p95"] <= timing["p99"]
        assert app["first_ms"]["p50"] <= app["done_ms"]["p50"]
        assert app["connect_ms"]["p50"] > 0
        assert set(level["overhead_ms"]) == {"first", "done"}
        assert level["overhead_ms"]["first"]["p99"] is not None
        assert level["server"]["cpu_ms_per_answer"] >= 0
        assert level["server"]["rss_peak_mb"] > 0
        assert level["idle"]["open"] == level["sessions"]
        assert level["idle"]["rss_per_session_kb"] is not None
    assert results["machine"]["nproc"] >= 1
    assert results["config"]["database"] == "sqlite"
    table = (tmp_path / "latest.md").read_text()
    assert "| 5 | 5/5 |" in table
    assert "| sessions |" in done.stdout


@pytest.mark.timeout(TIMEOUT_S + 30)
def test_two_workers_are_compared_with_one(tmp_path: Path) -> None:
    instant = ["--first-token-ms", "0", "--tokens", "10", "--tokens-per-second", "100000"]
    done = subprocess.run(
        [sys.executable, str(RUN), "--levels", "2", "--questions", "1", *instant,
         "--database", "sqlite", "--compare-workers", "2", "--out", str(tmp_path)],
        cwd=BACKEND,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads((tmp_path / "latest.json").read_text())
    comparison = results["workers_comparison"]
    assert comparison["workers"] == [1, 2]
    assert comparison["second_run"]["config"]["workers"] == 2
    [row] = comparison["levels"]
    assert row["errors"] == [{}, {}]
    assert row["ratio"] == pytest.approx(row["answers_per_s"][1] / row["answers_per_s"][0], 0.01)
    assert results["config"]["app_command"].startswith("resume-chat serve ")  # the safe run command
    assert "--workers 2" in comparison["second_run"]["config"]["app_command"]
    assert f"| 2 | {row['answers_per_s'][0]:.1f} / {row['answers_per_s'][1]:.1f} |" in done.stdout
