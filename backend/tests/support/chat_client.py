"""A small WebSocket chat client for tests, over a real connection."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

TIMEOUT = 10.0


@dataclass
class Answer:
    chunks: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


class ChatClient:
    def __init__(
        self,
        connection: ClientConnection,
        session: dict[str, Any],
        before: list[dict[str, Any]],
    ) -> None:
        self.connection = connection
        self.session = session
        self.before = before
        self.session_id: str = session["data"]["session_id"]

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def receive(self) -> dict[str, Any]:
        async with asyncio.timeout(TIMEOUT):
            frame: dict[str, Any] = json.loads(await self.connection.recv())
        return frame

    async def collect(self) -> Answer:
        """Chunks until the `done` or `error` that ends the turn."""
        answer = Answer()
        while True:
            frame = await self.receive()
            if frame["type"] == "chunk":
                answer.chunks.append(frame["data"])
                answer.seqs.append(frame["seq"])
            elif frame["type"] in ("done", "error"):
                answer.final = frame
                return answer

    async def ask(self, question: str) -> Answer:
        await self.send({"type": "message", "data": question})
        return await self.collect()


@asynccontextmanager
async def chat(
    port: int,
    session_id: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    last_seq: int | None = None,
    **options: Any,
) -> AsyncIterator[ChatClient]:
    """Connect and read frames up to and including `session`; earlier ones go in `.before`.

    `last_seq` resumes an answer being streamed after that chunk; `options` go to
    `websockets.connect`.
    """
    query = {"session_id": session_id, "last_seq": last_seq}
    encoded = "&".join(f"{key}={value}" for key, value in query.items() if value is not None)
    url = f"ws://127.0.0.1:{port}/ws" + (f"?{encoded}" if encoded else "")
    async with connect(url, additional_headers=headers, **options) as connection:
        before = []
        while True:
            async with asyncio.timeout(TIMEOUT):
                frame = json.loads(await connection.recv())
            if frame["type"] == "session":
                break
            before.append(frame)
        yield ChatClient(connection, frame, before)


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """A Server-Sent Events body (`event:` and `data:` lines per block) as (event, data)."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


async def stored_texts(port: int, session_id: str) -> list[str]:
    """The texts of a conversation as stored, from GET /api/sessions/{id}/messages."""
    async with httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{port}/api/sessions/{session_id}/messages"
        return [m["content"] for m in (await http.get(url)).json()["messages"]]
