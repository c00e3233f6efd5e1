"""Which answers are streaming now, by session: this process's own and, with Redis, others'."""

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from app.core.config import Settings
from app.live.answer import LiveAnswer

if TYPE_CHECKING:  # the relay (and the Redis client library) load only with REDIS_URL
    from app.live.relay import Relay, RemoteAnswer

type Streaming = LiveAnswer | RemoteAnswer


class LiveHub:
    def __init__(self, relay: "Relay | None" = None) -> None:
        self._relay = relay
        self._answers: dict[uuid.UUID, LiveAnswer] = {}
        self._cancels: dict[uuid.UUID, Callable[[], None]] = {}

    def local(self, session_id: uuid.UUID) -> LiveAnswer | None:
        return self._answers.get(session_id)

    def add(self, session_id: uuid.UUID, answer: LiveAnswer, cancel: Callable[[], None]) -> None:
        """Make `answer` followable (here, and through Redis when there is one)."""
        self._answers[session_id] = answer
        self._cancels[session_id] = cancel
        if self._relay is not None:
            self._relay.mirror(session_id, answer)

    def cancel(self, session_id: uuid.UUID) -> None:
        """Stop the answer streaming here for `session_id`, if there is one."""
        cancel = self._cancels.get(session_id)
        if cancel is not None:
            cancel()

    def end(self, session_id: uuid.UUID, answer: LiveAnswer) -> None:
        if self._answers.get(session_id) is answer:
            del self._answers[session_id]
            del self._cancels[session_id]

    async def find(self, session_id: uuid.UUID) -> Streaming | None:
        """The answer streaming for `session_id`, here or on another instance."""
        answer = self._answers.get(session_id)
        if answer is not None:
            return answer
        return await self._relay.find(session_id) if self._relay is not None else None

    def follow(self, streaming: Streaming, after: int = 0) -> AsyncIterator[list[str]]:
        """Frames after the first `after` chunks, then live ones, up to the final frame."""
        if isinstance(streaming, LiveAnswer):
            return streaming.follow(after)
        assert self._relay is not None, "remote answers are only found through the relay"
        return self._relay.follow(streaming, after)

    async def hold(self, session_id: uuid.UUID, seconds: float) -> None:
        """Tell other instances, for `seconds`, that this one follows `session_id`'s answer."""
        if self._relay is not None:
            await self._relay.hold(session_id, seconds)

    async def held(self, session_id: uuid.UUID) -> bool:
        """Whether another instance follows `session_id`'s answer (see `hold`)."""
        return self._relay is not None and await self._relay.held(session_id)

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.close()


@asynccontextmanager
async def open_live_hub(settings: Settings) -> AsyncIterator[LiveHub]:
    """A hub for this process; with REDIS_URL, one whose answers other instances can follow."""
    if settings.redis_url is None:
        yield LiveHub()
        return
    from app.core.redis import open_redis
    from app.live.relay import Relay

    client = open_redis(settings.redis_url, blocking_reads=True, decode_responses=True)
    # The longest a healthy answer goes without a new frame, plus a margin.
    stall = max(settings.llm_first_token_timeout, settings.llm_chunk_timeout) + 5
    prefix = f"{settings.redis_key_prefix}:"
    hub = LiveHub(Relay(client, key_prefix=prefix, stall_seconds=stall))
    try:
        yield hub
    finally:
        await hub.close()
        await client.aclose()
