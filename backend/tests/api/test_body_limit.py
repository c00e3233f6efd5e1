"""REST bodies over MAX_REQUEST_BODY_BYTES are refused by the app, under a plain uvicorn."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from app.core.config import Settings
from devtools.fake_llm import FakeLLM
from tests.support.app import running_app

LIMIT = 4096


def settings(fake_llm: FakeLLM, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        openrouter_api_key="sk-test",
        openrouter_base_url=fake_llm.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        max_request_body_bytes=LIMIT,
        max_message_chars=100_000,
        max_message_tokens=100_000,
        llm_context_tokens=200_000,
    )


async def chunks(size: int) -> AsyncIterator[bytes]:
    """A JSON body of about `size` bytes, sent without Content-Length (chunked)."""
    yield b'{"message": "'
    for _ in range(size // 1024):
        yield b"a" * 1024
    yield b'"}'


async def test_bodies_over_the_cap_are_refused_with_413_whether_declared_or_chunked(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    async with (
        running_app(settings(fake_llm, tmp_path)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        declared = await http.post("/api/chat", json={"message": "a" * 2 * LIMIT})
        chunked = await http.post(
            "/api/chat", content=chunks(2 * LIMIT), headers={"Content-Type": "application/json"}
        )
        fits = await http.post("/api/chat", json={"message": "Where is she based?"})
    assert "content-length" in declared.request.headers
    assert "content-length" not in chunked.request.headers
    for refused in (declared, chunked):
        assert refused.status_code == 413
        assert refused.json() == {
            "error": {
                "code": "content_too_large",
                "message": f"Request bodies are limited to {LIMIT} bytes.",
            }
        }
    assert fits.status_code == 200
    assert len(fake_llm.requests) == 1  # only the one that fit went upstream
