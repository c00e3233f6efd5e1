"""The README's production commands, `uv sync --frozen --no-dev` then
`uv run --no-dev resume-chat serve`, serve the product from an environment without the
development tools (as the Dockerfile's image does).

The environment goes into a fresh directory (`UV_PROJECT_ENVIRONMENT`), so the test's own
environment is untouched; its size is printed for docs/reverse-proxy.md.
"""

import asyncio
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.app import BACKEND, clean_env, free_port

UV = shutil.which("uv")
DEV_ONLY = ["pytest", "mypy", "ruff", "playwright", "schemathesis", "openai", "matplotlib"]

pytestmark = pytest.mark.skipif(UV is None, reason="needs uv on PATH")


def production_env(venv: Path, **settings: str) -> dict[str, str]:
    env = clean_env(**settings) | {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)  # the test's own environment, not the one under test
    return env


def installed(venv: Path, module: str) -> bool:
    python = venv / "bin" / "python"
    found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
    return found.returncode == 0


def sync_no_dev(venv: Path) -> str:
    """`uv sync --frozen --no-dev` into `venv`; its size as `du -sh` says it."""
    assert UV is not None
    command = [UV, "sync", "--frozen", "--no-dev"]
    synced = subprocess.run(command, cwd=BACKEND, env=production_env(venv), capture_output=True)
    assert synced.returncode == 0, synced.stderr.decode()
    size = subprocess.run(["du", "-sh", venv], capture_output=True, text=True, check=True)
    return size.stdout.split()[0]


async def test_uv_sync_no_dev_then_the_run_command_serves_the_product(tmp_path: Path) -> None:
    assert UV is not None
    venv = tmp_path / "venv"
    size = await asyncio.to_thread(sync_no_dev, venv)
    print(f"\nserving environment: {size}")
    assert [module for module in DEV_ONLY if installed(venv, module)] == []

    port = free_port()
    settings = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "answer_spool_path": str(tmp_path / "spool.jsonl"),
    }  # and no OPENROUTER_API_KEY: the resume's excerpts answer
    process = await asyncio.create_subprocess_exec(
        UV, "run", "--no-dev", "resume-chat", "serve", "--port", str(port),
        cwd=BACKEND, env=production_env(venv, **settings),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            async with asyncio.timeout(90):
                while process.returncode is None:
                    try:
                        ready = await http.get("/health/ready")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            assert process.returncode is None, "the run command exited at start-up"
            answer = await http.post("/api/chat", json={"message": "Where did she study?"})
            docs = await http.get("/docs")
            script = await http.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _out, err = await process.communicate()

    assert ready.status_code == 200, ready.text
    assert ready.json()["mode"] == "resume_excerpt"
    assert answer.status_code == 200, answer.text
    assert answer.json()["source"] == "resume_excerpt"
    assert "Education" in answer.json()["answer"]
    assert (docs.status_code, script.status_code) == (200, 200)
    assert process.returncode in (0, 128 + signal.SIGTERM)  # uv run reports the signal
    assert "Application shutdown complete" in err.decode(), err.decode()[-2000:]
