"""Plays a sequence of client actions over real sockets and records what came back.

Used by test_protocol_properties.py. The app and the stand-in provider run on an event
loop in a background thread (`background`), so each Hypothesis example can run its own
loop in the test's thread.
"""

import asyncio
import itertools
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.exceptions import ConnectionClosed

from app.db.tables import Message
from devtools.fake_llm import FakeLLM, Reply
from tests.support.chat_client import TIMEOUT, ChatClient, chat

# A question frame -> (the question as it would be stored, or the code that refuses it).
Classify = Callable[[str], tuple[str | None, str | None]]
TURN_END = ("done", "error")
SYNC_CODES = frozenset({"invalid_message", "message_too_long", "busy"})  # never from a turn


@dataclass(frozen=True)
class Ask:
    text: str


@dataclass(frozen=True)
class Send:
    """Any frame but a question: `kind` is bad (answered with `code`), ping or cancel."""

    frame: str | bytes
    kind: str
    code: str | None = None


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Settle:
    """Wait until every question and bad frame sent so far has had its reply."""


@dataclass(frozen=True)
class Provider:
    reply: Reply


@dataclass(frozen=True)
class Reconnect:
    """Close the socket (perhaps mid-answer) and come back with `?session_id=`."""


Action = Ask | Send | Pause | Settle | Provider | Reconnect


@dataclass(frozen=True)
class Sent:
    kind: str  # question, bad, ping or cancel
    codes: frozenset[str] = frozenset()  # error codes that may answer it at once
    question: str | None = None  # how a valid question is stored


@dataclass(frozen=True)
class Row:
    role: str
    content: str
    finish_reason: str | None
    error_code: str | None


@dataclass
class SocketLog:
    session_id: str
    session: dict[str, Any]
    before: list[dict[str, Any]]
    watched: bool  # False: opened while an earlier answer may still stream; not checked
    stored_before: int  # questions the session had stored when the socket opened
    sent: list[Sent] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    closed_by_server: bool = False
    abandoned: bool = False  # the client left with an answer in flight

    def count(self, kind: str) -> int:
        return sum(1 for frame in self.frames if frame["type"] == kind)

    @property
    def replies(self) -> int:
        return sum(1 for frame in self.frames if frame["type"] in TURN_END)

    @property
    def owed(self) -> int:
        """Replies still due: every question and bad frame gets exactly one done or error."""
        return sum(1 for sent in self.sent if sent.kind in ("question", "bad")) - self.replies

    @property
    def turns_ended(self) -> int:
        return sum(1 for frame in self.frames if is_turn_end(frame))


def is_turn_end(frame: dict[str, Any]) -> bool:
    if frame["type"] == "error":
        return str(frame["data"]["code"]) not in SYNC_CODES
    return bool(frame["type"] == "done")


class Live:
    """An open socket whose frames a reader task appends to its log as they arrive."""

    def __init__(self, client: ChatClient, log: SocketLog, stack: AsyncExitStack) -> None:
        self.client, self.log, self.stack = client, log, stack
        self.closing = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.client.connection:
                self.log.frames.append(json.loads(raw))
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        self.log.closed_by_server = not self.closing
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, holds: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(TIMEOUT), self._changed:
                await self._changed.wait_for(lambda: holds() or self._reader.done())
        except TimeoutError:
            raise AssertionError(f"no {what} within {TIMEOUT} s: {self.log.frames[-5:]}") from None
        assert holds(), f"the server closed the socket before {what}: {self.log.frames[-5:]}"

    async def close(self) -> None:
        self.closing = True
        await self.stack.aclose()
        await self._reader


class Driver:
    def __init__(self, port: int, fake: FakeLLM, engine: AsyncEngine, classify: Classify) -> None:
        self.port, self.fake, self.engine, self.classify = port, fake, engine, classify
        self.logs: list[SocketLog] = []
        self._live: Live | None = None
        self._tags = itertools.count()

    @property
    def live(self) -> Live:
        assert self._live is not None
        return self._live

    async def play(self, actions: list[Action]) -> None:
        await self.open(None)
        for action in actions:
            await self.act(action)
        await self.settle()
        await self.close()
        await self.open(self.logs[-1].session_id)  # the final look at the stored history
        await self.close()

    async def act(self, action: Action) -> None:
        match action:
            case Ask(text=text):
                await self.ask(text)
            case Send(frame=frame, kind=kind, code=code):
                self.live.log.sent.append(Sent(kind, frozenset({code} if code else ())))
                await self.live.client.send(frame)
            case Pause(seconds=seconds):
                await asyncio.sleep(seconds)
            case Settle():
                await self.settle()
            case Provider(reply=reply):
                self.fake.default = reply  # read by the provider's thread at its next request
            case Reconnect():
                await self.reconnect()

    async def settle(self) -> None:
        log = self.live.log
        pings = sum(1 for sent in log.sent if sent.kind == "ping")
        await self.live.wait_for(
            lambda: log.owed == 0 and log.count("pong") == pings, "reply to every frame"
        )

    async def ask(self, text: str) -> None:
        if text.strip():  # a unique tag, so stored questions can be told apart
            lead = text[: len(text) - len(text.lstrip())]
            text = f"{lead}Q{next(self._tags)} {text.lstrip()}"
        frame = json.dumps({"type": "message", "data": text}, ensure_ascii=False)
        stored, code = self.classify(frame)
        codes = {code} if code else set()
        if self.live.log.owed:  # an answer may be in flight
            codes.add("busy")
        self.live.log.sent.append(Sent("question", frozenset(codes), stored))
        await self.live.client.send(frame)

    async def reconnect(self) -> None:
        log = self.live.log
        log.sent.append(Sent("ping"))
        pings = sum(1 for sent in log.sent if sent.kind == "ping")
        await self.live.client.send({"type": "ping"})
        # The last pong comes after the replies to every earlier frame, but not after answers.
        await self.live.wait_for(lambda: log.count("pong") == pings, "pong")
        log.abandoned = log.owed > 0
        await self.close()
        if log.abandoned:
            # Back at once, as a page would, while the answer may still be streaming.
            await self.open(log.session_id, watched=False)
            await self.wait_stored(log.session_id, log.stored_before + log.turns_ended + 1)
            await self.close()
        await self.open(log.session_id)

    async def open(self, session_id: str | None, *, watched: bool = True) -> None:
        stack = AsyncExitStack()
        client = await stack.enter_async_context(chat(self.port, session_id))
        data = client.session["data"]
        rows = await self.rows(data["session_id"])
        stored = sum(1 for row in rows if row.role == "user")
        log = SocketLog(data["session_id"], data, client.before, watched, stored)
        self.logs.append(log)
        self._live = Live(client, log, stack)

    async def close(self) -> None:
        await self.live.close()
        self._live = None

    async def abort(self) -> None:
        """Close the socket if one is still open (after a failure)."""
        if self._live is not None:
            await self.close()

    async def wait_stored(self, session_id: str, questions: int) -> None:
        """Until the session has `questions` questions stored, each with its answer."""

        def enough(rows: list[Row]) -> bool:
            roles = [row.role for row in rows]
            return roles.count("user") >= questions and roles.count("assistant") >= questions

        await poll(lambda: self.rows(session_id), enough, "the abandoned answer to be stored")

    async def rows(self, session_id: str) -> list[Row]:
        """The session's stored messages, oldest first, read from the database itself."""
        columns = (Message.role, Message.content, Message.finish_reason, Message.error_code)
        async with self.engine.connect() as connection:
            result = await connection.execute(
                select(*columns)
                .where(Message.conversation_id == uuid.UUID(session_id))
                .order_by(Message.id)
            )
        return [Row(*row) for row in result]


async def poll[T](read: Callable[[], Awaitable[T]], holds: Callable[[T], bool], what: str) -> T:
    try:
        async with asyncio.timeout(TIMEOUT):
            while not holds(value := await read()):  # noqa: ASYNC110 (rows written elsewhere)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited {TIMEOUT} s for {what}") from None
    return value


@contextmanager
def background[T](start: Callable[[AsyncExitStack], Coroutine[Any, Any, T]]) -> Iterator[T]:
    """Run `start` on an event loop in a thread; its stack is closed on that loop at the end."""
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield asyncio.run_coroutine_threadsafe(start(stack), loop).result(timeout=60)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
