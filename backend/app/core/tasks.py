"""The one way to run work beside the app: start it, keep a reference, stop it on shutdown."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


async def stop(task: asyncio.Task[Any] | None, *, grace: float = 0.0) -> None:
    """Let `task` finish for up to `grace` seconds, then cancel it and wait for it to end.

    Its cancellation is swallowed; any other error it ended with is raised.
    """
    if task is None:
        return
    if grace > 0:
        await asyncio.wait([task], timeout=grace)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def running_in_background(
    work: Coroutine[Any, Any, None], *, name: str
) -> AsyncIterator[asyncio.Task[None]]:
    """Run `work` as a task for as long as the block runs, then cancel it."""
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        await stop(task)


class BackgroundTasks:
    """Fire-and-forget tasks that are kept referenced and stopped together on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None], *, name: str | None = None) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, *, grace: float = 0.0) -> None:
        """Give running tasks `grace` seconds to finish, then cancel the rest."""
        await asyncio.gather(*(stop(task, grace=grace) for task in set(self._tasks)))
