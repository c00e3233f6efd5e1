"""LiveAnswer.follow: a socket following an answer from any point, live, up to its end."""

import asyncio
from collections.abc import AsyncIterator

from app.live.answer import LiveAnswer


async def collect(batches: AsyncIterator[list[str]]) -> list[list[str]]:
    async with asyncio.timeout(2):
        return [batch async for batch in batches]


def finished(*chunks: str, final: str = "done") -> LiveAnswer:
    answer = LiveAnswer("What does she do?")
    for chunk in chunks:
        answer.add(chunk)
    answer.finish(final)
    return answer


async def test_a_finished_answer_is_followed_in_one_batch_up_to_its_final_frame() -> None:
    answer = finished("c1", "c2", "c3")
    assert await collect(answer.follow()) == [["c1", "c2", "c3", "done"]]


async def test_a_reconnecting_socket_gets_only_the_chunks_it_missed() -> None:
    answer = finished("c1", "c2", "c3")
    assert await collect(answer.follow(after=2)) == [["c3", "done"]]


async def test_a_socket_that_saw_every_chunk_still_gets_the_final_frame() -> None:
    answer = finished("c1", "c2", final="error")
    assert await collect(answer.follow(after=2)) == [["error"]]
    assert await collect(answer.follow(after=99)) == [["error"]]


async def test_frames_added_later_reach_a_waiting_follower_in_order() -> None:
    answer = LiveAnswer("Where is she based?")
    answer.add("c1")
    received: list[str] = []

    async def follow() -> None:
        async for batch in answer.follow():
            received.extend(batch)

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    assert received == ["c1"]
    assert not follower.done()  # still waiting for more
    answer.add("c2")
    answer.add("c3")  # written before the follower runs: one batch
    await asyncio.sleep(0.01)
    answer.finish("done")
    async with asyncio.timeout(2):
        await follower
    assert received == ["c1", "c2", "c3", "done"]


async def test_a_follower_ahead_of_the_answer_waits_for_the_next_frame() -> None:
    answer = LiveAnswer("Since when?")
    answer.add("c1")
    batches = answer.follow(after=5)
    pending = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.01)
    assert not pending.done()
    answer.add("c2")
    async with asyncio.timeout(2):
        assert await pending == ["c2"]
    answer.finish("done")
    assert await collect(batches) == [["done"]]


async def test_every_follower_gets_the_whole_answer_at_its_own_pace() -> None:
    answer = LiveAnswer("Languages?")
    fast = asyncio.create_task(collect(answer.follow()))
    await asyncio.sleep(0.01)
    for n in range(1, 4):
        answer.add(f"c{n}")
        await asyncio.sleep(0.01)
    slow = asyncio.create_task(collect(answer.follow(after=1)))
    answer.finish("done")
    fast_batches, slow_batches = await fast, await slow
    assert [frame for batch in fast_batches for frame in batch] == ["c1", "c2", "c3", "done"]
    assert len(fast_batches) == 4  # one batch per frame as they arrived
    assert slow_batches == [["c2", "c3", "done"]]


async def test_only_the_first_final_frame_counts() -> None:
    answer = finished("c1")
    answer.finish("error")
    assert answer.frames == ["c1", "done"]
    assert answer.next_seq == 3
    assert await collect(answer.follow()) == [["c1", "done"]]


async def test_chunks_are_numbered_from_one() -> None:
    answer = LiveAnswer("Hi?")
    assert answer.next_seq == 1
    answer.add("c1")
    assert answer.next_seq == 2
