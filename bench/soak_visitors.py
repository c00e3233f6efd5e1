"""The soak's visitors, each a loop until told to stop.

A visitor opens a WebSocket (a new session, or its own one resumed) and asks a few
questions: plainly, cancelling mid-answer, asking twice at once (the second is refused
`busy`), or leaving mid-answer and coming back with `?session_id=&last_seq=` to follow
the rest. Now and then it asks over REST (`POST /api/chat`) instead. Every question's
ending is tallied, with the session it belongs to, for the database check.
"""

import asyncio
import itertools
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

REFUSALS = frozenset(  # nothing stored: README's refusals, and a session that is not there
    {"busy", "rate_limited", "invalid_message", "message_too_long", "session_limit_reached"}
    | {"budget_exceeded", "session_not_found"}
)
QUESTIONS = (
    "What does she do now?",
    "Which languages has she used most?",
    "Tell me about a project she led.",
    "Where did she study?",
    "What is she looking for next?",
)
KINDS = ("plain", "cancel", "twice", "leave")
WEIGHTS = (6, 2, 1, 2)
FRAME_TIMEOUT_S = 60.0
CLIENT_FAILURES = (OSError, TimeoutError, WebSocketException, InvalidHandshake, httpx.HTTPError)


@dataclass
class Tally:
    asked: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # answered, cancelled, <code>...
    accepted: Counter[str] = field(default_factory=Counter)  # per session: passed the checks
    unknown: Counter[str] = field(default_factory=Counter)  # per session: the client gave up
    client_failures: Counter[str] = field(default_factory=Counter)

    @property
    def endings(self) -> int:
        return sum(self.outcomes.values())

    def ended(self, session: str, frame: dict[str, Any]) -> None:
        """One question's `done` or `error` frame (or REST body shaped like one)."""
        data = frame["data"]
        if frame["type"] == "done":
            kind = "cancelled" if data["finish_reason"] == "cancelled" else "answered"
            resume = data.get("source") == "resume_excerpt"
            self.outcomes[f"{kind} from the resume" if resume else kind] += 1
        else:
            self.outcomes[data["code"]] += 1
        if frame["type"] == "done" or data["code"] not in REFUSALS:
            self.accepted[_key(session)] += 1

    def add(self, other: "Tally") -> None:
        self.asked += other.asked
        for mine, theirs in zip(self.counters(), other.counters(), strict=True):
            mine.update(theirs)

    def counters(self) -> tuple[Counter[str], ...]:
        return self.outcomes, self.accepted, self.unknown, self.client_failures


def _key(session: str) -> str:
    return str(uuid.UUID(str(session)))


class Visitor:
    def __init__(self, number: int, base: str, stop: asyncio.Event) -> None:
        self.number, self.base, self.stop = number, base, stop
        self.tally = Tally()
        self.rng = random.Random(number)  # noqa: S311 (load, not secrets)
        self.session: str | None = None
        self._asked = itertools.count()

    async def run(self, think_s: float) -> None:
        async with httpx.AsyncClient(base_url=f"http://{self.base}", timeout=60) as http:
            while not self.stop.is_set():
                asked, endings = self.tally.asked, self.tally.endings
                try:
                    if self.session and self.rng.random() < 0.15:
                        await self.rest(http)
                    else:
                        await self.visit()
                except CLIENT_FAILURES as exc:
                    self.tally.client_failures[type(exc).__name__] += 1
                finally:  # questions whose ending the visitor never saw (failure, or stopped)
                    missing = (self.tally.asked - asked) - (self.tally.endings - endings)
                    if missing and self.session:
                        self.tally.unknown[_key(self.session)] += missing
                await asyncio.sleep(self.rng.uniform(0, 2 * think_s))

    def question(self) -> str:
        return f"{self.rng.choice(QUESTIONS)} (visitor {self.number}, #{next(self._asked)})"

    async def open(
        self, session: str | None, last_seq: int = 0
    ) -> tuple[ClientConnection, dict[str, Any]]:
        query = f"?session_id={session}&last_seq={last_seq}" if session else ""
        ws = await connect(f"ws://{self.base}/ws{query}", open_timeout=30, ping_interval=None)
        while (frame := await self.receive(ws))["type"] != "session":
            pass  # session_not_found: a session that never stored a question; a new one follows
        self.session = frame["data"]["session_id"]
        return ws, frame["data"]

    async def receive(self, ws: ClientConnection) -> dict[str, Any]:
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            frame: dict[str, Any] = json.loads(await ws.recv())
        return frame

    async def visit(self) -> None:
        resume = self.session if self.rng.random() < 0.7 else None
        ws, _ = await self.open(resume)
        try:
            for _ in range(self.rng.randint(1, 4)):
                kind = self.rng.choices(KINDS, WEIGHTS)[0]
                if kind == "leave":
                    await self.leave(ws)
                    return
                await self.ask(ws, cancel=kind == "cancel", twice=kind == "twice")
                if self.stop.is_set():
                    return
        finally:
            await ws.close()

    async def send_question(self, ws: ClientConnection) -> None:
        await ws.send(json.dumps({"type": "message", "data": self.question()}))
        self.tally.asked += 1

    async def ask(self, ws: ClientConnection, *, cancel: bool, twice: bool) -> None:
        await self.send_question(ws)
        if twice:
            await self.send_question(ws)
        if cancel:
            await asyncio.sleep(self.rng.uniform(0, 0.4))
            await ws.send('{"type": "cancel"}')
        await self.read_endings(ws, 2 if twice else 1)

    async def read_endings(self, ws: ClientConnection, owed: int) -> int:
        """Reads until `owed` questions have ended; returns the last chunk's seq."""
        assert self.session is not None
        last_seq = 0
        while owed:
            frame = await self.receive(ws)
            if frame["type"] == "chunk":
                last_seq = frame.get("seq", last_seq + 1)
            elif frame["type"] in ("done", "error"):
                self.tally.ended(self.session, frame)
                owed -= 1
        return last_seq

    async def leave(self, ws: ClientConnection) -> None:
        """Ask, leave after a chunk or few, come back and follow the answer to its end."""
        assert self.session is not None
        await self.send_question(ws)
        wanted, last_seq = self.rng.randint(1, 4), 0
        while last_seq < wanted:
            frame = await self.receive(ws)
            if frame["type"] in ("done", "error"):
                self.tally.ended(self.session, frame)
                return
            if frame["type"] == "chunk":
                last_seq = frame.get("seq", last_seq + 1)
        await ws.close()
        asked_in = self.session  # a chunk arrived, so the question is stored there
        again, data = await self.open(asked_in, last_seq)
        try:
            if data.get("answering"):
                await self.read_endings(again, 1)
            else:  # it ended while we were away; its ending is in the database
                self.tally.outcomes["ended while away"] += 1
                self.tally.accepted[_key(asked_in)] += 1
        finally:
            await again.close()

    async def rest(self, http: httpx.AsyncClient) -> None:
        assert self.session is not None
        body = {"message": self.question(), "session_id": self.session}
        self.tally.asked += 1
        response = await http.post("/api/chat", json=body)
        if response.status_code == 200:
            answer = response.json()
            frame = {"type": "done", "data": answer}
        else:
            frame = {"type": "error", "data": response.json()["error"]}
        self.tally.ended(self.session, frame)
        if frame["data"].get("code") == "session_not_found":  # its first question was refused
            self.session = None
