"""`resume-chat serve`'s access log names requests, not the chat sessions in their URLs."""

import asyncio
import re
from pathlib import Path

import httpx

from devtools.fake_llm import FakeLLM
from tests.support.app import uvicorn_process
from tests.support.chat_client import chat

TOKEN = "admin-test-token"


async def test_session_ids_stay_out_of_request_lines(fake_llm: FakeLLM, tmp_path: Path) -> None:
    settings = {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "admin_token": TOKEN,
        "log_level": "INFO",
    }
    async with uvicorn_process(**settings) as (port, process):
        async with chat(port) as first:
            await first.ask("Where does she work?")
        session_id = first.session_id
        async with chat(port, session_id) as again:  # /ws?session_id=...
            await again.ask("And before that?")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await http.get(f"/api/sessions/{session_id}/messages")
            await http.get(f"/api/sessions/{session_id}/messages?session_id={session_id}")
            await http.get("/api/ui/chat/my-secret-chat-id/stream")
            auth = {"Authorization": f"Bearer {TOKEN}"}
            await http.get(f"/api/admin/conversations/{session_id}", headers=auth)
        process.terminate()
        assert process.stderr is not None
        async with asyncio.timeout(30):
            err = await process.stderr.read()  # to the end: the process has exited
    lines = err.decode().splitlines()
    requests = [line for line in lines if re.search(r'"(GET|POST|WebSocket) /', line)]
    print("\n".join(requests))
    assert len(requests) >= 7, lines
    leaking = [line for line in requests if session_id in line or "my-secret-chat-id" in line]
    assert leaking == []
    assert any('"WebSocket /ws?session_id=***" [accepted]' in line for line in requests)
    assert any('"GET /api/sessions/***/messages HTTP/1.1" 200' in line for line in requests)
    assert any('"GET /api/ui/chat/***/stream HTTP/1.1" 204' in line for line in requests)
    assert any('"GET /api/admin/conversations/*** HTTP/1.1" 200' in line for line in requests)
    # The app's own lines still name the session, so a chat can be followed in the log.
    assert any(f"session={session_id}" in line for line in lines if line not in requests)
