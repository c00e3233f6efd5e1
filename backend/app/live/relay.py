"""Live answers shared between instances through Redis streams.

The instance running a turn mirrors its `LiveAnswer` to the stream `<prefix>live:<session>`:
entry `1-0` holds the question, entry `1-n` the n-th frame (chunks numbered from 1, the
final `done` or `error` last, marked `end`). Writes are batched (one pipeline per
`flush_seconds`) so mirroring costs little per chunk. An instance a visitor reconnects
to finds the stream, reads from the chunk after the visitor's last one and blocks for
the rest. The stream expires soon after the answer ends, or when its writer stops
refreshing it (a crashed instance), so a dead answer is not followed for long.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.core.errors import AnswerInterruptedError, StorageUnavailableError
from app.core.logger import get_logger
from app.core.redact import describe
from app.core.tasks import BackgroundTasks
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
        self._mirrors = BackgroundTasks()
        self._writing: dict[str, asyncio.Event] = {}

    def _key(self, session_id: uuid.UUID) -> str:
        return f"{self._prefix}live:{session_id}"

    def mirror(self, session_id: uuid.UUID, answer: LiveAnswer) -> None:
        """Copy `answer` to Redis as it grows, in the background.

        A session's next answer waits for the previous copy to be written out, so the two
        never interleave in the session's stream.
        """
        key = self._key(session_id)
        previous, done = self._writing.get(key), asyncio.Event()
        self._writing[key] = done
        self._mirrors.start(self._mirror_after(previous, done, key, answer), name="relay-mirror")

    async def _mirror_after(
        self, previous: asyncio.Event | None, done: asyncio.Event, key: str, answer: LiveAnswer
    ) -> None:
        try:
            if previous is not None:
                await previous.wait()
            await self._mirror(key, answer)
        finally:
            done.set()
            if self._writing.get(key) is done:
                del self._writing[key]

    async def _mirror(self, key: str, answer: LiveAnswer) -> None:
        # Until it ends, the stream lives a little longer than the writer may stay silent.
        ttl = max(1, round(self._stall_seconds))
        written = 0
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.xadd(key, {"q": answer.question}, id="1-0")
                pipe.expire(key, ttl)
                await pipe.execute()
            async for batch in answer.follow():
                async with self._client.pipeline(transaction=False) as pipe:
                    for frame in batch:
                        written += 1
                        end = "1" if answer.final and written == len(answer.frames) else "0"
                        pipe.xadd(key, {"f": frame, "end": end}, id=f"1-{written}")
                    pipe.expire(key, _END_TTL_SECONDS if answer.final else ttl)
                    await pipe.execute()
                if not answer.final:
                    await asyncio.sleep(self._flush_seconds)
        except _REDIS_ERRORS as exc:
            logger.warning("could not share a live answer through Redis: %s", describe(exc))

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
        await self._mirrors.close(grace=2)


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """Stream entries as `(id, fields)` (the client decodes replies to text)."""
    return [(entry_id, dict(fields)) for entry_id, fields in reply]
