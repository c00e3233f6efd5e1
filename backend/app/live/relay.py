"""Live answers shared between instances through Redis streams.

The instance running a turn mirrors its `LiveAnswer` to the stream `<prefix>live:<session>`:
entry `1-0` holds the question, entry `1-n` the n-th frame (chunks numbered from 1, the
final `done` or `error` last, marked `end`). One writer per instance copies what every
answer streaming there added since its last pass, all in one pipeline, every
`flush_seconds`: a round trip to Redis per 50 ms for the whole instance, not one per
answer (bench/PERFORMANCE.md). An instance a visitor reconnects to finds the stream,
reads from the chunk after the visitor's last one and blocks for the rest. The stream
expires soon after the answer ends, or when its writer stops refreshing it (a crashed
instance), so a dead answer is not followed for long.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.core.errors import AnswerInterruptedError, StorageUnavailableError
from app.core.logger import get_logger
from app.core.redact import describe
from app.core.tasks import stop
from app.live.answer import LiveAnswer

logger = get_logger(__name__)

_END_TTL_SECONDS = 60
# Python 3.13.0's asyncio raises AttributeError, not OSError, when writing to a pooled
# connection that Redis reset (see `app.core.redis.open_redis`).
_REDIS_ERRORS = (RedisError, OSError, AttributeError)


@dataclass(frozen=True, slots=True)
class RemoteAnswer:
    """An answer streaming on another instance."""

    session_id: uuid.UUID
    question: str


@dataclass(eq=False, slots=True)
class _Mirror:
    """One answer being copied to its stream: how far, and when its TTL was last set."""

    answer: LiveAnswer
    written: int = 0  # frames already sent to Redis
    started: bool = False  # the stream was reset and holds the question
    refreshed: float = 0.0  # loop time of its last EXPIRE
    abandoned: bool = False  # a write failed: the stream has a gap, so no more of it

    @property
    def complete(self) -> bool:
        return self.abandoned or (self.answer.final and self.written == len(self.answer.frames))


class Relay:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key_prefix: str,
        stall_seconds: float,
        flush_seconds: float = 0.05,
    ) -> None:
        self._client = client
        self._prefix = key_prefix
        self._stall_seconds = stall_seconds
        self._flush_seconds = flush_seconds
        # Until it ends, a stream lives a little longer than its writer may stay silent.
        self._ttl = max(1, round(stall_seconds))
        self._mirrors: dict[str, list[_Mirror]] = {}  # by stream, a session's oldest first
        self._writer: asyncio.Task[None] | None = None
        self._waiting = asyncio.Event()  # set when there is something to write

    def _key(self, session_id: uuid.UUID) -> str:
        return f"{self._prefix}live:{session_id}"

    def mirror(self, session_id: uuid.UUID, answer: LiveAnswer) -> None:
        """Copy `answer` to Redis as it grows, from the next pass of the writer on.

        A session's next answer is written only once the previous one has been written
        out, so the two never interleave in the session's stream.
        """
        self._mirrors.setdefault(self._key(session_id), []).append(_Mirror(answer))
        self._waiting.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all(), name="relay-writer")

    async def _write_all(self) -> None:
        """The writer: a pass every `flush_seconds` while answers stream, none otherwise."""
        while True:
            await self._waiting.wait()
            try:
                await self._write_once()
            except Exception:  # a bug, not Redis: share nothing more of these answers
                logger.exception("the live answers' writer failed")
                self._mirrors.clear()
            if not self._mirrors:
                self._waiting.clear()
            await asyncio.sleep(self._flush_seconds)

    async def _write_once(self) -> None:
        """One pipeline with what every mirrored answer added since the last pass."""
        now = asyncio.get_running_loop().time()
        written: list[_Mirror] = []
        async with self._client.pipeline(transaction=True) as pipe:
            for key, mirrors in self._mirrors.items():
                for mirror in mirrors:
                    if self._add(pipe, key, mirror, now):
                        written.append(mirror)
                    if not mirror.complete:
                        break  # the session's next answer waits for this one's end
            if written:
                try:
                    await pipe.execute()
                except _REDIS_ERRORS as exc:  # their followers elsewhere stall, then give up
                    logger.warning("could not share live answers through Redis: %s", describe(exc))
                    for mirror in written:
                        mirror.abandoned = True
        self._drop_complete()

    def _add(self, pipe: Any, key: str, mirror: _Mirror, now: float) -> bool:
        """Queue `mirror`'s new entries on `pipe`; whether there were any."""
        answer, queued = mirror.answer, False
        if not mirror.started:
            pipe.delete(key)
            pipe.xadd(key, {"q": answer.question}, id="1-0")
            pipe.expire(key, self._ttl)
            mirror.started, mirror.refreshed, queued = True, now, True
        frames, final = answer.frames, answer.final
        for index in range(mirror.written, len(frames)):
            end = "1" if final and index == len(frames) - 1 else "0"
            pipe.xadd(key, {"f": frames[index], "end": end}, id=f"1-{index + 1}")
            queued = True
        ended = final and mirror.written < len(frames)
        mirror.written = len(frames)
        if ended:
            pipe.expire(key, _END_TTL_SECONDS)
        elif not final and now - mirror.refreshed >= self._ttl / 3:
            pipe.expire(key, self._ttl)
            mirror.refreshed, queued = now, True
        return queued

    def _drop_complete(self) -> None:
        for key in list(self._mirrors):
            left = [mirror for mirror in self._mirrors[key] if not mirror.complete]
            if left:
                self._mirrors[key] = left
            else:
                del self._mirrors[key]

    async def find(self, session_id: uuid.UUID) -> RemoteAnswer | None:
        """The answer streaming for `session_id` on some instance, if any."""
        try:
            newest = _entries(await self._client.xrevrange(self._key(session_id), count=1))
            if not newest or newest[0][1].get("end") == "1":
                return None
            first = _entries(await self._client.xrange(self._key(session_id), "1-0", "1-0"))
        except _REDIS_ERRORS as exc:
            logger.warning("could not look up a live answer in Redis: %s", describe(exc))
            return None
        return RemoteAnswer(session_id, first[0][1].get("q", "") if first else "")

    async def follow(self, remote: RemoteAnswer, after: int = 0) -> AsyncIterator[list[str]]:
        """Batches of frames after chunk `after`, up to the final one (see `LiveAnswer.follow`)."""
        key, last = self._key(remote.session_id), f"1-{after}"
        block_ms = round(self._stall_seconds * 1000)
        while True:
            try:
                reply = await self._client.xread({key: last}, count=256, block=block_ms)
            except _REDIS_ERRORS as exc:
                raise StorageUnavailableError("The live answer could not be followed.") from exc
            if not reply:  # its writer has stopped: crashed or cut off
                raise AnswerInterruptedError()
            entries = _entries(cast(Any, reply)[0][1])
            last = entries[-1][0]
            yield [fields["f"] for _id, fields in entries]
            if entries[-1][1].get("end") == "1":
                return

    async def hold(self, session_id: uuid.UUID, seconds: float) -> None:
        """Say, for `seconds`, that someone on this instance follows `session_id`'s answer."""
        try:
            await self._client.set(f"{self._key(session_id)}:held", "1", px=round(seconds * 1000))
        except _REDIS_ERRORS as exc:
            logger.warning("could not mark a live answer as followed in Redis: %s", describe(exc))

    async def held(self, session_id: uuid.UUID) -> bool:
        """Whether some instance said lately that it follows `session_id`'s answer."""
        try:
            return bool(await self._client.exists(f"{self._key(session_id)}:held"))
        except _REDIS_ERRORS as exc:
            logger.warning(
                "could not look up a live answer's followers in Redis: %s", describe(exc)
            )
            return False

    async def close(self) -> None:
        """Write out what the answers added last (for up to 2 s), then stop the writer."""
        await stop(self._writer)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while self._mirrors:
                    await self._write_once()
                    if self._mirrors:
                        await asyncio.sleep(self._flush_seconds)


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """Stream entries as `(id, fields)` (the client decodes replies to text)."""
    return [(entry_id, dict(fields)) for entry_id, fields in reply]
