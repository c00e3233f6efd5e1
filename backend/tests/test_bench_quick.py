"""The benchmark harness still works: `bench/run.py --quick` end to end, on SQLite."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[1]
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
