"""How frames reach one socket: in order, never piling up, whatever the client does.

`SocketSender` is the one way a socket is written to. A client that stops reading
fills the server's small send buffer; once a send has waited `WS_SEND_TIMEOUT`
seconds the socket is closed with 1008 and a reason, so a slow reader costs a bounded
amount of memory and never holds up the answer (which is stored either way).
`LiveSink` is where a turn started on this socket writes its frames: into the
`LiveAnswer` that this socket, and any socket that reconnects, follows.

A socket gets the chunks it has not been sent yet as one `chunk` frame: their texts
joined, the last one's `seq`. Each frame sent costs a write to the socket, the largest
single cost of an answer (bench/PERFORMANCE.md); a joined frame costs one for all of
them. The turn writes its chunks paced by `STREAM_CHUNK_INTERVAL` already (one for the
tokens of 50 ms: app/llm/pacing.py), so a socket sends each as it comes; a socket that
falls behind (a busy server, a replay after reconnecting) gets what it missed at once.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
from fastapi import WebSocket

from app.api.errors import error_frame
from app.chat.protocol import DoneData, DoneEvent
from app.chat.service import ConversationService
from app.chat.turns import ActiveTurn, ChatSession, Client
from app.core.errors import AnswerInterruptedError, AppError
from app.core.logger import get_logger
from app.live.answer import LiveAnswer
from app.live.hub import LiveHub

logger = get_logger(__name__)

POLICY_VIOLATION = 1008


class SocketSender:
    def __init__(self, websocket: WebSocket, send_timeout: float) -> None:
        self._websocket = websocket
        self._send_timeout = send_timeout
        self._lock = asyncio.Lock()
        self.open = True

    async def send(self, *frames: str) -> None:
        """Send `frames` in order; once the visitor has gone, drop them."""
        if not self.open:
            return
        try:
            async with self._lock, asyncio.timeout(self._send_timeout):
                for frame in frames:
                    await self._websocket.send({"type": "websocket.send", "text": frame})
        except TimeoutError:
            await self._close_stalled()
        except Exception:  # the client went away; the turn carries on without it
            self.open = False

    async def _close_stalled(self) -> None:
        self.open = False
        logger.warning("closing a socket that stopped reading (%.0f s)", self._send_timeout)
        with contextlib.suppress(Exception):
            await self._websocket.close(POLICY_VIOLATION, "client stopped reading")

    async def pump(self, batches: AsyncIterator[list[str]]) -> None:
        """Send an answer's frames as they come, until its final frame."""
        try:
            async for batch in batches:
                await self.send(*coalesce(batch))
                if not self.open:
                    return
        except AppError as error:  # the answer could not be followed to its end
            await self.send(error_frame(error))


_CHUNK_PREFIX = '{"type":"chunk",'  # how `LiveSink.chunk` (orjson) starts a chunk frame
# A joined frame holds at most about this many characters of frames, so that a reader
# who stopped reading still meets the send buffer's back-pressure one small write at a time.
JOINED_CHARS = 8192


def coalesce(frames: list[str]) -> list[str]:
    """`frames` with each run of consecutive chunk frames joined into one (or a few)."""
    if len(frames) < 2:
        return frames
    joined: list[str] = []
    run: list[str] = []
    size = 0
    for frame in frames:
        if not frame.startswith(_CHUNK_PREFIX) or size + len(frame) > JOINED_CHARS:
            joined.extend(_join(run))
            run, size = [], 0
        if frame.startswith(_CHUNK_PREFIX):
            run.append(frame)
            size += len(frame)
        else:
            joined.append(frame)
    joined.extend(_join(run))
    return joined


def _join(run: list[str]) -> list[str]:
    if len(run) < 2:
        return run
    chunks = [orjson.loads(frame) for frame in run]
    return [_chunk_frame("".join(chunk["data"] for chunk in chunks), chunks[-1]["seq"])]


def _chunk_frame(text: str, seq: int) -> str:
    return orjson.dumps({"type": "chunk", "data": text, "seq": seq}).decode()


class LiveSink:
    """A turn's events as protocol frames, into the live answer its sockets follow."""

    def __init__(self, answer: LiveAnswer) -> None:
        self._answer = answer

    async def chunk(self, text: str) -> None:
        self._answer.add(_chunk_frame(text, self._answer.next_seq))

    async def done(self, data: DoneData) -> None:
        self._answer.finish(DoneEvent(data=data).model_dump_json())

    async def error(self, error: AppError) -> None:
        self._answer.finish(error_frame(error))


def start_live_turn(
    service: ConversationService, hub: LiveHub, chat: ChatSession, question: str, client: Client
) -> tuple[ActiveTurn, LiveAnswer]:
    """Start a turn whose frames go into a live answer, followable from the hub until the
    turn ends (finished as `answer_interrupted` if it ended without its last frame)."""
    answer = LiveAnswer(question)
    turn = service.start_turn(chat, question, client, LiveSink(answer))
    hub.add(chat.id, answer, turn.cancel)

    def ended(_task: object) -> None:
        answer.finish(error_frame(AnswerInterruptedError()))  # only if it had no end
        hub.end(chat.id, answer)

    assert turn.task is not None
    turn.task.add_done_callback(ended)
    return turn, answer
