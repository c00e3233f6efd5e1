"""Where `RateLimiter` keeps its windows and counters: this process's memory, or Redis.

A `Backend` pairs the `limits` moving-window strategy with the concurrency counters on
one storage. Counters are a dict in memory (a dead process takes its counts with it),
or on Redis leases that a dead instance stops renewing (`app.limits.leases`). The Redis
client library is imported only when a Redis backend is made.
"""

import bisect
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from app.limits.leases import RedisLeases

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class Counters(Protocol):
    async def acquire(self, key: str, cap: int) -> bool: ...
    async def release(self, key: str) -> None: ...
    async def close(self) -> None: ...


class MemoryCounters:
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


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    storage: Storage
    strategy: MovingWindowRateLimiter
    counters: Counters

    async def close(self) -> None:
        await self.counters.close()
        if isinstance(self.storage, MemoryStorage) and self.storage.timer:
            self.storage.timer.cancel()


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage, sweeping out expired entries at most once a second.

    Upstream sweeps every key after every hit, each key through a thread-pool hop: with
    hundreds of visitors that was 3 % of the app's CPU (bench/PERFORMANCE.md, issue 18).
    Limits are counted the same: every read filters by time itself; the sweep only frees
    memory. (The override targets limits' name-mangled hook; tests/unit/test_limits_memory.py
    fails if limits renames it.)
    """

    SWEEP_SECONDS = 1.0
    _swept_at = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 (limits' name)
        now = time.monotonic()
        if now - self._swept_at >= self.SWEEP_SECONDS:
            self._swept_at = now
            self.sweep()

    def sweep(self) -> None:
        """Drop expired moving-window entries and counters, in the loop (no awaits)."""
        now = time.time()
        for key, events in list(self.events.items()):
            kept = events[: bisect.bisect_left(events, -now, key=lambda event: -event.expiry)]
            if kept:
                self.events[key] = kept
            else:
                self.events.pop(key, None)
                self.locks.pop(key, None)
        for key, expiry in list(self.expirations.items()):
            if expiry <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


def memory_backend() -> Backend:
    storage = SweptMemoryStorage()
    return Backend("memory", storage, MovingWindowRateLimiter(storage), MemoryCounters())


def redis_backend(
    client: "aioredis.Redis", url: str, key_prefix: str, lease_seconds: float
) -> Backend:
    # One pool for windows and counters; limits takes `connection_pool` but types its
    # options as scalars.
    options: dict[str, Any] = {"connection_pool": client.connection_pool}
    storage = RedisStorage(
        _limits_uri(url), implementation="redispy", key_prefix=key_prefix, **options
    )
    leases = RedisLeases(client, lease_seconds)
    return Backend("redis", storage, MovingWindowRateLimiter(storage), leases)


def _limits_uri(redis_url: str) -> str:
    """`redis://`, `rediss://` and `unix://` URLs in the `limits` async spelling."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url
