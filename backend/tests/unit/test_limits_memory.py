"""The in-process rate-limit storage: limits counted as upstream, expired entries swept."""

import asyncio

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from app.limits.storage import SweptMemoryStorage


async def test_counts_like_limits_and_sweeps_at_most_once_a_second() -> None:
    storage = SweptMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    limit = parse("2/second")
    storage.SWEEP_SECONDS = 0.2

    allowed = [await limiter.hit(limit, "ip") for _ in range(3)]
    await storage.incr("counter", expiry=1)
    assert allowed == [True, True, False]
    assert storage.timer is None  # no sweep task, no thread-pool hop
    assert [key.split("/")[1] for key in storage.events] == ["ip"]

    await asyncio.sleep(1.1)  # the window and the counter have expired
    assert await limiter.hit(limit, "other")  # a hit after SWEEP_SECONDS sweeps

    assert "counter" not in storage.storage
    assert [key.split("/")[1] for key in storage.events] == ["other"]
    assert await limiter.hit(limit, "ip")
