"""Rate limits and concurrency caps shared by every way in (WebSocket now, REST later).

Windows (questions, new sessions) use the `limits` library's moving window strategy:
it keeps one timestamp per hit, so "10/minute" means no more than 10 in any 60
seconds, with no burst of 2N across a window boundary (fixed window) and no estimate
from the previous window's weight (sliding window counter). The time until the oldest
hit leaves the window is therefore the exact `retry_after`. Its cost, up to N
timestamps per key, is small for limits sized for people typing questions.

Concurrency caps (open connections per IP, model streams overall) are counters: a dict
in memory, or INCR/DECR on Redis keys whose one-hour TTL, refreshed on every acquire,
lets a counter left behind by a crashed instance die out. With `REDIS_URL` every app
process shares both, so several processes enforce one combined limit. If Redis stops
answering, checks fail closed with `StorageUnavailableError`.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from app.core.config import Settings
from app.core.errors import RateLimitedError, StartupError, StorageUnavailableError
from app.core.logger import get_logger

logger = get_logger(__name__)

KEY_PREFIX = "resume-chat"
COUNTER_TTL_SECONDS = 3600
STREAM_RETRY_AFTER = 2
REDIS_TIMEOUT_SECONDS = 2.0

QUESTIONS_MESSAGE = "You are asking questions too quickly. Please wait {wait}."
NEW_SESSIONS_MESSAGE = "You are starting new chats too quickly. Please wait {wait}."
CONNECTIONS_MESSAGE = "Too many open chats from your network. Close one and try again."
STREAMS_MESSAGE = "The assistant is answering many visitors right now. Please try again shortly."
UNAVAILABLE_MESSAGE = "Rate limiting is unavailable right now. Please try again shortly."

# Take a slot only while the counter is under the cap; refresh the TTL safety net.
_ACQUIRE_LUA = """
if tonumber(redis.call('get', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 0 end
redis.call('incr', KEYS[1])
redis.call('expire', KEYS[1], ARGV[2])
return 1
"""
_RELEASE_LUA = """
if redis.call('decr', KEYS[1]) <= 0 then redis.call('del', KEYS[1]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class _Rule:
    item: RateLimitItem
    identifiers: tuple[str, ...]


class _Counters(Protocol):
    async def acquire(self, key: str, cap: int) -> bool: ...
    async def release(self, key: str) -> None: ...
    async def close(self) -> None: ...


class _MemoryCounters:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    async def acquire(self, key: str, cap: int) -> bool:
        if self._counts.get(key, 0) >= cap:
            return False
        self._counts[key] = self._counts.get(key, 0) + 1
        return True

    async def release(self, key: str) -> None:
        remaining = self._counts.get(key, 0) - 1
        if remaining > 0:
            self._counts[key] = remaining
        else:
            self._counts.pop(key, None)

    async def close(self) -> None:
        self._counts.clear()


class _RedisCounters:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._release = client.register_script(_RELEASE_LUA)
        self._releasing: set[asyncio.Task[None]] = set()

    async def acquire(self, key: str, cap: int) -> bool:
        return bool(await self._acquire(keys=[key], args=[cap, COUNTER_TTL_SECONDS]))

    async def release(self, key: str) -> None:
        """Shielded, so a second cancellation of the caller cannot lose the DECR."""
        task = asyncio.ensure_future(self._decrement(key))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        await asyncio.shield(task)

    async def _decrement(self, key: str) -> None:
        try:
            await self._release(keys=[key])
        except RedisError:
            logger.warning("Could not release %s; its TTL will clear it", key, exc_info=True)

    async def close(self) -> None:
        await asyncio.gather(*self._releasing)
        await self._client.aclose()


class RateLimiter:
    """Build with `await RateLimiter.create(settings)`; `close()` it on shutdown."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        counters: _Counters,
        *,
        storage_name: str,
        client: aioredis.Redis | None = None,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        self.storage_name = storage_name
        self._settings = settings
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self._counters = counters
        self._client = client
        self._prefix = key_prefix
        self._questions_per_ip = parse_many(settings.rate_limit_questions_per_ip)
        self._questions_per_session = parse_many(settings.rate_limit_questions_per_session)
        self._new_sessions_per_ip = parse_many(settings.rate_limit_new_sessions_per_ip)

    @classmethod
    async def create(cls, settings: Settings, *, key_prefix: str = KEY_PREFIX) -> "RateLimiter":
        """In memory, or on `settings.redis_url`, which must answer a PING."""
        if settings.redis_url is None:
            return cls(settings, MemoryStorage(), _MemoryCounters(), storage_name="memory")
        client = await _connect_redis(settings.redis_url)
        # One pool for windows and counters; limits takes `connection_pool` but types
        # its options as scalars.
        options: dict[str, Any] = {"connection_pool": client.connection_pool}
        storage = RedisStorage(
            _limits_uri(settings.redis_url),
            implementation="redispy",
            key_prefix=key_prefix,
            **options,
        )
        return cls(
            settings,
            storage,
            _RedisCounters(client),
            storage_name="redis",
            client=client,
            key_prefix=key_prefix,
        )

    async def check_question(self, ip: str, session_id: str) -> None:
        """Count one question against the IP's and the session's limits, or refuse it."""
        rules = [_Rule(item, ("question", "ip", ip)) for item in self._questions_per_ip]
        rules += [
            _Rule(item, ("question", "session", session_id)) for item in self._questions_per_session
        ]
        await self._consume(rules, QUESTIONS_MESSAGE)

    async def check_new_session(self, ip: str) -> None:
        rules = [_Rule(item, ("new-session", "ip", ip)) for item in self._new_sessions_per_ip]
        await self._consume(rules, NEW_SESSIONS_MESSAGE)

    def connection(self, ip: str) -> AbstractAsyncContextManager[None]:
        """Hold one of the IP's `max_connections_per_ip` slots for the life of a socket."""
        key = f"{self._prefix}:connections:{ip}"
        refusal = RateLimitedError(CONNECTIONS_MESSAGE)
        return self._slot(key, self._settings.max_connections_per_ip, refusal)

    def stream_slot(self) -> AbstractAsyncContextManager[None]:
        """Hold one of the service's `max_concurrent_streams` slots while a model answers."""
        key = f"{self._prefix}:streams"
        refusal = RateLimitedError(STREAMS_MESSAGE, retry_after=STREAM_RETRY_AFTER)
        return self._slot(key, self._settings.max_concurrent_streams, refusal)

    async def ping(self) -> bool:
        if self._client is None:
            return True
        try:
            return bool(await self._client.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._counters.close()
        if isinstance(self._storage, MemoryStorage) and self._storage.timer:
            self._storage.timer.cancel()

    async def _consume(self, rules: Sequence[_Rule], message: str) -> None:
        """Test every rule, then hit every rule, so a refusal consumes none of them.

        Two requests racing past the test can still find a rule full at the hit; that
        one is refused too, having consumed the rules it did hit.
        """
        strategy = self._strategy
        allowed = await self._guard(
            asyncio.gather(*(strategy.test(rule.item, *rule.identifiers) for rule in rules))
        )
        blocked = [rule for rule, ok in zip(rules, allowed, strict=True) if not ok]
        if not blocked:
            hits = await self._guard(
                asyncio.gather(*(strategy.hit(rule.item, *rule.identifiers) for rule in rules))
            )
            blocked = [rule for rule, ok in zip(rules, hits, strict=True) if not ok]
        if blocked:
            retry_after = await self._retry_after(blocked)
            raise RateLimitedError(
                message.format(wait=_wait_text(retry_after)), retry_after=retry_after
            )

    async def _retry_after(self, blocked: Sequence[_Rule]) -> int:
        """Whole seconds (at least 1) until every blocking window has room again."""
        stats = await self._guard(
            asyncio.gather(
                *(self._strategy.get_window_stats(rule.item, *rule.identifiers) for rule in blocked)
            )
        )
        reset_at = max(stat.reset_time for stat in stats)
        return max(1, math.ceil(reset_at - time.time()))

    @asynccontextmanager
    async def _slot(self, key: str, cap: int, refusal: RateLimitedError) -> AsyncIterator[None]:
        if not await self._guard(self._counters.acquire(key, cap)):
            raise refusal
        try:
            yield
        finally:
            await self._counters.release(key)

    @staticmethod
    async def _guard[T](operation: Awaitable[T]) -> T:
        try:
            return await operation
        except (RedisError, StorageError) as exc:
            raise StorageUnavailableError(UNAVAILABLE_MESSAGE) from exc


def _wait_text(seconds: int) -> str:
    if seconds == 1:
        return "1 second"
    if seconds < 120:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***`, fit for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _limits_uri(redis_url: str) -> str:
    """`redis://`, `rediss://` and `unix://` URLs in the `limits` async spelling."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


def _hide_password(text: str, url: str) -> str:
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text


async def _connect_redis(url: str) -> aioredis.Redis:
    shown = redact_url(url)
    try:
        client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
    except ValueError as exc:
        reason = _hide_password(str(exc), url)
        raise StartupError(f"REDIS_URL {shown} is not a Redis URL: {reason}") from exc
    try:
        await client.ping()
    except RedisError as exc:
        await client.aclose()
        reason = _hide_password(str(exc), url)
        raise StartupError(f"Redis at {shown} did not answer: {reason}") from exc
    return client
