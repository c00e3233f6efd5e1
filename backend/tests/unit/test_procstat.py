"""The benchmark's CPU reading counts the processes that have exited too."""

import os
import subprocess
import sys
import time
from pathlib import Path

import procstat

# Runs a child that spends CPU and exits (this parent reaps it), then waits to be killed.
PARENT = """
import subprocess, sys
subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.3\\n"
                "while time.process_time() < end: pass"], check=True)
print("reaped", flush=True)
sys.stdin.read()
"""


def test_named_cpu_counts_children_that_have_exited(tmp_path: Path) -> None:
    """As PostgreSQL's backends: a closed connection's backend exits and the postmaster
    reaps it; its CPU must stay in the reading."""
    name = f"parent{os.getpid()}"[:15]  # a name of its own: /proc's comm, at most 15
    python = tmp_path / name
    python.symlink_to(sys.executable)
    with subprocess.Popen(
        [python, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        try:
            assert parent.stdout.readline() == "reaped\n"
            time.sleep(0.05)
            [stat] = [stat for stat in procstat.all_stats() if stat.name == name]
            reading = procstat.named_cpu_s(name)
        finally:
            parent.kill()

    assert stat.reaped_cpu_s >= 0.25
    assert reading >= stat.cpu_s + 0.25
