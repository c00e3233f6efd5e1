"""`resume-chat eval` as an owner runs it: the installed console script, against the
stand-in provider in its own process (`python -m devtools.fake_llm --bot good|bad`)."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.app import BACKEND, clean_env, free_port

COMMAND = Path(sys.executable).with_name("resume-chat")


@contextmanager
def stand_in(bot: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.fake_llm", "--port", str(port), "--bot", bot,
         "--first-token-delay", "0", "--token-delay", "0"],
        cwd=BACKEND, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            try:
                httpx.post(f"{base_url}/chat/completions", json={"messages": []}, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    pytest.fail("the stand-in provider did not start")
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def evaluate(base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(openrouter_base_url=base_url, llm_model="stand-in/model")
    return subprocess.run(
        [str(COMMAND), "eval", *args], cwd=BACKEND, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def test_the_console_script_passes_a_good_model_and_fails_a_bad_one(tmp_path: Path) -> None:
    with stand_in("good") as good_url, stand_in("bad") as bad_url:
        good = evaluate(good_url, "--json", str(tmp_path / "good.json"))
        bad = evaluate(bad_url, "--markdown", str(tmp_path / "bad.md"))

    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS: thresholds 85% overall" in good.stdout
    assert json.loads((tmp_path / "good.json").read_text())["result"] == "pass"
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL" in bad.stdout
    assert "tried to reveal its instructions" in bad.stdout
    assert "**fail**" in (tmp_path / "bad.md").read_text()
