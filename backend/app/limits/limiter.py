"""Rate limits and concurrency caps shared by every way in (WebSocket and REST).

Windows (questions, new sessions) use the `limits` library's moving window strategy:
it keeps one timestamp per hit, so "10/minute" means no more than 10 in any 60
seconds, with no burst of 2N across a window boundary (fixed window) and no estimate
from the previous window's weight (sliding window counter). The time until the oldest
hit leaves the window is therefore the exact `retry_after`. Its cost, up to N
timestamps per key, is small for limits sized for people typing questions.

Concurrency caps (open connections per client, model streams overall) are counters in
memory or, with `REDIS_URL`, leases on Redis that each instance renews while it runs, so
a killed instance's slots free one `SLOT_LEASE_SECONDS` later (`app.limits.leases`).
On Redis, every app process enforces one combined limit. The Redis client library is
imported only with `REDIS_URL` (it is a second of a cold start).

When Redis stops answering, `RATE_LIMIT_FAIL_OPEN` decides. True (the default): the
limiter logs one warning and counts in this process's memory, with the same limits,
until a background check every `REDIS_RECHECK_SECONDS` finds Redis again; then it logs
that and goes back. Memory windows start empty, and each process counts alone, so
during an outage N processes allow up to N times the limits. This holds from start-up:
an app started while Redis is down comes up on memory. False: checks fail with
`StorageUnavailableError` while Redis is down, and start-up is refused.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse_many
from limits.errors import StorageError

from app.core.config import Settings
from app.core.errors import RateLimitedError, StartupError, StorageUnavailableError
from app.core.logger import get_logger
from app.core.tasks import stop
from app.limits.storage import Backend, Counters, memory_backend

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RateLimiter"]

logger = get_logger(__name__)

KEY_PREFIX = "resume-chat"
STREAM_RETRY_AFTER = 2
REDIS_RECHECK_SECONDS = 1.0

QUESTIONS_MESSAGE = "You are asking questions too quickly. Please wait {wait}."
NEW_SESSIONS_MESSAGE = "You are starting new chats too quickly. Please wait {wait}."
CONTACTS_MESSAGE = "You have sent your details several times already. Please wait {wait}."
CONNECTIONS_MESSAGE = "Too many open chats from your network. Close one and try again."
STREAMS_MESSAGE = "The assistant is answering many visitors right now. Please try again shortly."
UNAVAILABLE_MESSAGE = "Rate limiting is unavailable right now. Please try again shortly."


@dataclass(frozen=True, slots=True)
class _Rule:
    item: RateLimitItem
    identifiers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Redis:
    client: "aioredis.Redis"
    backend: Backend
    shown_url: str


class RateLimiter:
    """Build with `await RateLimiter.create(settings)`; `close()` it on shutdown."""

    def __init__(
        self, settings: Settings, redis: _Redis | None = None, *, key_prefix: str = KEY_PREFIX
    ) -> None:
        self.fail_open = settings.rate_limit_fail_open
        self._settings = settings
        self._memory = memory_backend()
        self._redis = redis
        self._active = redis.backend if redis else self._memory
        self._down: tuple[type[Exception], ...] = (StorageError,)  # and RedisError with Redis
        self._watcher: asyncio.Task[None] | None = None
        self._prefix = key_prefix
        self._questions_per_ip = parse_many(settings.rate_limit_questions_per_ip)
        self._questions_per_session = parse_many(settings.rate_limit_questions_per_session)
        self._new_sessions_per_ip = parse_many(settings.rate_limit_new_sessions_per_ip)
        self._contacts_per_ip = parse_many(settings.rate_limit_contacts_per_ip)

    @classmethod
    async def create(cls, settings: Settings, *, key_prefix: str = KEY_PREFIX) -> "RateLimiter":
        """In memory, or on `settings.redis_url`; see the module docstring for Redis down."""
        url = settings.redis_url
        if url is None:
            return cls(settings, key_prefix=key_prefix)
        from redis.exceptions import RedisError

        from app.core.redact import redact
        from app.core.redis import hide_password, open_redis
        from app.limits.storage import redis_backend

        client = open_redis(url)
        backend = redis_backend(client, url, key_prefix, settings.slot_lease_seconds)
        redis = _Redis(client, backend, redact(url))
        limiter = cls(settings, redis, key_prefix=key_prefix)
        limiter._down = (RedisError, StorageError)
        try:
            await client.ping()
        except RedisError as exc:
            reason = hide_password(str(exc), url)
            if not limiter.fail_open:
                await limiter.close()
                raise StartupError(
                    f"Redis at {redis.shown_url} did not answer: {reason} "
                    "(RATE_LIMIT_FAIL_OPEN is false)"
                ) from exc
            limiter._fall_back(reason)
        return limiter

    @property
    def storage_name(self) -> str:
        """Where limits are meant to live: `redis` with REDIS_URL, else `memory`."""
        return "redis" if self._redis else "memory"

    @property
    def on_fallback(self) -> bool:
        """True while Redis is configured but limits are counted in memory."""
        return self._redis is not None and self._active is self._memory

    async def check_question(self, client: str, session_id: str) -> None:
        """Count one question against the client's and the session's limits, or refuse it.

        `client` here and below is `Client.network`: an IPv4 address or an IPv6 network.
        """
        rules = [_Rule(item, ("question", "ip", client)) for item in self._questions_per_ip]
        rules += [
            _Rule(item, ("question", "session", session_id)) for item in self._questions_per_session
        ]
        await self._run(lambda backend: _consume(backend, rules, QUESTIONS_MESSAGE))

    async def check_new_session(self, client: str) -> None:
        rules = [_Rule(item, ("new-session", "ip", client)) for item in self._new_sessions_per_ip]
        await self._run(lambda backend: _consume(backend, rules, NEW_SESSIONS_MESSAGE))

    async def check_contact(self, client: str) -> None:
        """Count one contact form sent by `client` (RATE_LIMIT_CONTACTS_PER_IP), or refuse it."""
        rules = [_Rule(item, ("contact", "ip", client)) for item in self._contacts_per_ip]
        await self._run(lambda backend: _consume(backend, rules, CONTACTS_MESSAGE))

    def connection(self, client: str) -> AbstractAsyncContextManager[None]:
        """Hold one of the client's `max_connections_per_ip` slots for the life of a socket."""
        key = f"{self._prefix}:leases:connections:{client}"
        refusal = RateLimitedError(CONNECTIONS_MESSAGE)
        return self._slot(key, self._settings.max_connections_per_ip, refusal)

    def stream_slot(self) -> AbstractAsyncContextManager[None]:
        """Hold one of the service's `max_concurrent_streams` slots while a model answers."""
        key = f"{self._prefix}:leases:streams"
        refusal = RateLimitedError(STREAMS_MESSAGE, retry_after=STREAM_RETRY_AFTER)
        return self._slot(key, self._settings.max_concurrent_streams, refusal)

    async def ping(self) -> bool:
        """Whether Redis answers (always true without REDIS_URL)."""
        if self._redis is None:
            return True
        try:
            return bool(await self._redis.client.ping())
        except Exception:  # any failure means "not reachable"; the watcher must not die
            return False

    async def close(self) -> None:
        await stop(self._watcher)
        await self._memory.close()
        if self._redis is not None:
            await self._redis.backend.close()

    async def _run[T](self, operation: Callable[[Backend], Awaitable[T]]) -> T:
        """`operation` on the active storage; on memory instead if Redis fails and may."""
        backend = self._active
        try:
            return await operation(backend)
        except self._down as exc:
            if backend is self._memory:
                raise
            if not self.fail_open:
                raise StorageUnavailableError(UNAVAILABLE_MESSAGE) from exc
            self._fall_back(str(exc))
        return await operation(self._memory)

    def _fall_back(self, reason: str) -> None:
        if self._redis is None or self.on_fallback:
            return
        self._active = self._memory
        logger.warning(
            "Redis at %s is unreachable (%s): counting rate limits in this process until it "
            "answers again (RATE_LIMIT_FAIL_OPEN=true)",
            self._redis.shown_url,
            reason,
        )
        self._watcher = asyncio.create_task(self._wait_for_redis(self._redis))

    async def _wait_for_redis(self, redis: _Redis) -> None:
        while True:
            await asyncio.sleep(REDIS_RECHECK_SECONDS)
            if await self.ping():
                break
        self._active = redis.backend
        logger.info("Redis at %s answers again: rate limits are shared again", redis.shown_url)

    @asynccontextmanager
    async def _slot(self, key: str, cap: int, refusal: RateLimitedError) -> AsyncIterator[None]:
        async def take(backend: Backend) -> Counters:
            if not await backend.counters.acquire(key, cap):
                raise refusal
            return backend.counters

        counters = await self._run(take)  # released where it was taken
        try:
            yield
        finally:
            await counters.release(key)


async def _consume(backend: Backend, rules: Sequence[_Rule], message: str) -> None:
    """Test every rule, then hit every rule, so a refusal consumes none of them.

    Two requests racing past the test can still find a rule full at the hit; that
    one is refused too, having consumed the rules it did hit.
    """
    strategy = backend.strategy
    allowed = await asyncio.gather(*(strategy.test(rule.item, *rule.identifiers) for rule in rules))
    blocked = [rule for rule, ok in zip(rules, allowed, strict=True) if not ok]
    if not blocked:
        hits = await asyncio.gather(*(strategy.hit(rule.item, *rule.identifiers) for rule in rules))
        blocked = [rule for rule, ok in zip(rules, hits, strict=True) if not ok]
    if blocked:
        stats = await asyncio.gather(
            *(strategy.get_window_stats(rule.item, *rule.identifiers) for rule in blocked)
        )
        reset_at = max(stat.reset_time for stat in stats)
        retry_after = max(1, math.ceil(reset_at - time.time()))  # until every window has room
        raise RateLimitedError(
            message.format(wait=_wait_text(retry_after)), retry_after=retry_after
        )


def _wait_text(seconds: int) -> str:
    if seconds == 1:
        return "1 second"
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
