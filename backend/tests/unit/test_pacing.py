"""Pace: a read of the model's stream waits one interval after a chunk went out, never
before the first, and not once the stream's body has ended."""

import asyncio
import time

from app.llm.pacing import Pace

INTERVAL = 0.2


async def timed_wait(pace: Pace) -> float:
    started = time.perf_counter()
    await pace.wait()
    return time.perf_counter() - started


async def test_a_read_waits_only_after_a_chunk_went_out() -> None:
    pace = Pace(INTERVAL)
    pace.start()
    assert await timed_wait(pace) < 0.05  # the first read: nothing sent yet
    pace.sent()
    assert INTERVAL * 0.9 < await timed_wait(pace) < INTERVAL * 2
    assert await timed_wait(pace) < 0.05  # nothing sent since: the next read goes at once


async def test_the_bodys_end_ends_a_wait_and_the_waits_after_it() -> None:
    pace = Pace(INTERVAL)
    pace.start()
    pace.sent()
    asyncio.get_running_loop().call_later(0.02, pace.end)
    assert await timed_wait(pace) < INTERVAL / 2
    pace.sent()
    assert await timed_wait(pace) < 0.05  # ended already
    pace.start()  # the next round's stream
    pace.sent()
    assert await timed_wait(pace) > INTERVAL * 0.9


async def test_no_interval_never_waits() -> None:
    pace = Pace(0)
    pace.start()
    pace.sent()
    assert await timed_wait(pace) < 0.05
