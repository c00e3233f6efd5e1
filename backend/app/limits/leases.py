"""Concurrency slots on Redis as leases an instance holds, so a dead instance's slots free.

A slot key is a sorted set: one member per slot taken, `<instance id>:<n>`, scored by the
time its lease ends (Redis server time, so the instances' clocks do not matter). Taking a
slot first drops the members whose lease has ended, then adds one if the set is under
the cap. Each instance renews the leases it holds every third of `SLOT_LEASE_SECONDS`;
an instance that dies (`kill -9`, OOM, lost node) stops renewing, and its slots are free
one lease later while traffic goes on. A renewal that finds its member gone (Redis
restarted, or the instance was paused past its lease) adds it back: a live instance
never loses its own slots. A release that cannot reach Redis is kept and sent with the
next acquire that can; until then the lease is no longer renewed, so it ends anyway.
"""

import asyncio
import collections
import itertools
import os
import socket
import uuid
from typing import TYPE_CHECKING

from app.core.logger import get_logger
from app.core.tasks import BackgroundTasks

if TYPE_CHECKING:
    import redis.asyncio as aioredis

logger = get_logger(__name__)

_NOW_MS = """
local time = redis.call('time')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
"""
# KEYS[1] the slot; ARGV cap, lease in ms, member. The key outlives every lease in it.
_ACQUIRE_LUA = (
    _NOW_MS
    + """
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('pexpire', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""
)
# KEYS[1] the slot; ARGV lease in ms, then the members this instance holds there.
_RENEW_LUA = (
    _NOW_MS
    + """
for i = 2, #ARGV do redis.call('zadd', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('pexpire', KEYS[1], 2 * tonumber(ARGV[1]))
return #ARGV - 1
"""
)


def instance_id() -> str:
    """Names this process in lease members: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class RedisLeases:
    """`Counters` on Redis: `acquire` takes a lease on one slot, `release` gives one back."""

    def __init__(self, client: "aioredis.Redis", lease_seconds: float) -> None:
        self._client = client
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._renew = client.register_script(_RENEW_LUA)
        self._instance = instance_id()
        self._numbers = itertools.count(1)
        self._held: dict[str, list[str]] = collections.defaultdict(list)
        self._unreleased: list[tuple[str, str]] = []
        self._releasing: set[asyncio.Task[None]] = set()
        self._heartbeat = BackgroundTasks()
        self._beating = False
        self._renewals_failing = False

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: three chances to renew before a lease ends."""
        return self._lease_ms / 3000

    async def acquire(self, key: str, cap: int) -> bool:
        if self._unreleased:
            await self._release_late()
        member = f"{self._instance}:{next(self._numbers)}"
        if not await self._acquire(keys=[key], args=[cap, self._lease_ms, member]):
            return False
        self._held[key].append(member)
        if not self._beating:
            self._beating = True
            self._heartbeat.start(self._renew_forever(), name="slot-lease-heartbeat")
        return True

    async def release(self, key: str) -> None:
        """Shielded, so a second cancellation of the caller cannot lose the ZREM."""
        members = self._held.get(key)
        if not members:
            return
        member = members.pop()
        if not members:
            del self._held[key]
        task = asyncio.ensure_future(self._remove(key, member))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        await asyncio.shield(task)

    async def _remove(self, key: str, member: str) -> None:
        from redis.exceptions import RedisError  # imported already with the client

        try:
            await self._client.zrem(key, member)
        except RedisError as exc:
            self._unreleased.append((key, member))
            logger.warning("Could not release %s (%s); will retry when Redis answers", key, exc)

    async def _release_late(self) -> None:
        pending, self._unreleased = self._unreleased, []
        for key, member in pending:
            await self._remove(key, member)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                await self.renew()
            except Exception:  # the heartbeat must outlive any one failure, or slots lapse
                logger.exception("Renewing slot leases failed; will retry")

    async def renew(self) -> None:
        """Extend every lease this instance holds; one script per slot key."""
        from redis.exceptions import RedisError

        try:
            for key, members in list(self._held.items()):
                renewing = list(members)
                await self._renew(keys=[key], args=[self._lease_ms, *renewing])
                # Released while the renewal was on its way: the renewal may have re-added it.
                stale = set(renewing).difference(self._held.get(key, ()))
                if stale:
                    await self._client.zrem(key, *stale)
        except RedisError as exc:
            if not self._renewals_failing:
                logger.warning("Could not renew slot leases (%s); will retry", exc)
            self._renewals_failing = True
        else:
            self._renewals_failing = False

    async def close(self) -> None:
        await self._heartbeat.close()
        await asyncio.gather(*self._releasing)
        await self._client.aclose()
