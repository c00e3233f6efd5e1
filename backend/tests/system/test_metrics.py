import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics import router
from app.core.config import Settings
from app.core.errors import StartupError
from app.core.metrics import Metrics
from tests.support.app import serve

BACKEND = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: bytes | str) -> Samples:
    text = body.decode() if isinstance(body, bytes) else body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


SCRIPTED_A = """
m.connection_opened(); m.connection_opened(); m.connection_opened(); m.connection_closed()
m.question_finished("stop", 0.4, 2.5, 120, 30)
m.upstream_error("llm_timeout")
m.refused("rate_limited")
"""
SCRIPTED_B = """
m.question_finished("stop", 1.5, 9.0, 200, 70)
m.question_finished("llm_timeout", None, 30.0, 100, 0)
m.refused("rate_limited"); m.refused("budget_exceeded")
"""


def assert_scripted_counts(samples: Samples) -> None:
    """What SCRIPTED_A and SCRIPTED_B add up to, wherever they ran."""
    assert value(samples, "resume_chat_open_connections") == 2
    assert value(samples, "resume_chat_questions_total", outcome="stop") == 2
    assert value(samples, "resume_chat_questions_total", outcome="llm_timeout") == 1
    assert value(samples, "resume_chat_first_token_seconds_count") == 2
    assert value(samples, "resume_chat_first_token_seconds_sum") == pytest.approx(1.9)
    assert value(samples, "resume_chat_first_token_seconds_bucket", le="0.25") == 0
    assert value(samples, "resume_chat_first_token_seconds_bucket", le="0.5") == 1
    assert value(samples, "resume_chat_first_token_seconds_bucket", le="2.0") == 2
    assert value(samples, "resume_chat_answer_seconds_count") == 3
    assert value(samples, "resume_chat_answer_seconds_sum") == pytest.approx(41.5)
    assert value(samples, "resume_chat_answer_seconds_bucket", le="3.0") == 1
    assert value(samples, "resume_chat_answer_seconds_bucket", le="20.0") == 2
    assert value(samples, "resume_chat_answer_seconds_bucket", le="30.0") == 3
    assert value(samples, "resume_chat_answer_seconds_bucket", le="+Inf") == 3
    assert value(samples, "resume_chat_tokens_total", direction="in") == 420
    assert value(samples, "resume_chat_tokens_total", direction="out") == 100
    assert value(samples, "resume_chat_upstream_errors_total", code="llm_timeout") == 1
    assert value(samples, "resume_chat_refusals_total", code="rate_limited") == 2
    assert value(samples, "resume_chat_refusals_total", code="budget_exceeded") == 1


def test_a_scripted_session_is_counted_exactly() -> None:
    m = Metrics()
    exec(SCRIPTED_A + SCRIPTED_B, {"m": m})

    body, content_type = m.render()

    assert content_type.startswith("text/plain; version=0.0.4")
    assert_scripted_counts(parse(body))


def test_each_instance_counts_from_zero() -> None:
    first = Metrics()
    first.refused("rate_limited")
    first.connection_opened()

    samples = parse(Metrics().render()[0])

    assert value(samples, "resume_chat_open_connections") == 0
    assert value(samples, "resume_chat_tokens_total", direction="in") == 0
    assert not any(name.startswith("resume_chat_refusals") for name, _ in samples)


def _worker(script: str, env_dir: Path, metrics_dir: Path | None) -> subprocess.Popen[str]:
    """A process like one server worker, started with PROMETHEUS_MULTIPROC_DIR=`env_dir`."""
    given = str(metrics_dir) if metrics_dir else None
    code = f"import sys\nfrom app.core.metrics import Metrics\nm = Metrics({given!r})\n"
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(env_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", code + script],
        cwd=BACKEND, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finish(worker: subprocess.Popen[str]) -> str:
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    return out


def test_workers_sharing_a_directory_are_rendered_together(tmp_path: Path) -> None:
    """prometheus_client picks multiprocess mode at import, so each worker is a process."""
    wait = "print('written', flush=True)\nsys.stdin.read()\n"
    first = _worker(SCRIPTED_A + wait, tmp_path, tmp_path)
    try:
        assert first.stdout is not None
        assert first.stdout.readline() == "written\n"  # both workers are alive from here
        second = _worker(SCRIPTED_B + "print(m.render()[0].decode())\n", tmp_path, tmp_path)
        rendered = _finish(second)
    finally:
        _finish(first)

    assert_scripted_counts(parse(rendered))


def test_a_directory_prometheus_client_does_not_use_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="PROMETHEUS_MULTIPROC_DIR must be exported"):
        Metrics(str(tmp_path))


def test_multiprocess_mode_without_a_directory_is_refused(tmp_path: Path) -> None:
    worker = _worker("", tmp_path, None)
    _, err = worker.communicate(timeout=60)

    assert worker.returncode == 1
    assert "multiprocess mode but Metrics got no multiprocess_dir" in err


def _app(metrics: Metrics, **settings: object) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, object]]:
        yield {"settings": Settings(_env_file=None, **settings), "metrics": metrics}  # type: ignore[arg-type]

    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    return app


async def _get(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.Response:
    async with serve(app) as port, httpx.AsyncClient() as http:
        return await http.get(f"http://127.0.0.1:{port}/metrics", headers=headers)


async def test_the_endpoint_serves_the_app_metrics() -> None:
    metrics = Metrics()
    metrics.refused("origin_refused")

    response = await _get(_app(metrics, metrics_enabled=True, metrics_token=None))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert value(parse(response.text), "resume_chat_refusals_total", code="origin_refused") == 1


async def test_the_endpoint_is_absent_when_disabled() -> None:
    response = await _get(_app(Metrics(), metrics_enabled=False))

    assert response.status_code == 404
    assert "resume_chat" not in response.text


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Basic czNjcmV0LXRva2Vu", "Bearer"]
)
async def test_a_token_is_required_when_configured(authorization: str | None) -> None:
    app = _app(Metrics(), metrics_enabled=True, metrics_token="s3cret-token")
    headers = {"Authorization": authorization} if authorization else None

    response = await _get(app, headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "resume_chat" not in response.text


async def test_the_right_token_is_let_through() -> None:
    app = _app(Metrics(), metrics_enabled=True, metrics_token="s3cret-token")

    response = await _get(app, {"Authorization": "Bearer s3cret-token"})

    assert response.status_code == 200
    assert "resume_chat_open_connections 0.0" in response.text
