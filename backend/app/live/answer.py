"""Answers while they stream, so that any socket can follow one from any point.

A turn writes its frames into a `LiveAnswer`: chunk frames numbered from 1, then one
final frame (`done` or `error`). Sockets follow it at their own pace, so a visitor
who reconnects mid-answer gets what they missed and then the rest live, and a slow
reader never holds up the turn. The frames are kept once per answer however many
sockets follow it, and dropped when the turn ends.

`LiveHub` keeps this process's live answers by session; with Redis, a `Relay` also
mirrors each one to a Redis stream so another instance can follow it.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(eq=False, slots=True)
class LiveAnswer:
    question: str
    frames: list[str] = field(default_factory=list)
    final: bool = False
    # HTTP streams following it now; an AI SDK answer nobody follows is stopped.
    watchers: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def next_seq(self) -> int:
        return len(self.frames) + 1

    def add(self, frame: str) -> None:
        """Append a chunk frame (numbered `next_seq` by its writer)."""
        self.frames.append(frame)
        self._changed.set()

    def finish(self, frame: str) -> None:
        """Append the final `done` or `error` frame; followers stop after it."""
        if self.final:
            return
        self.frames.append(frame)
        self.final = True
        self._changed.set()

    async def follow(self, after: int = 0) -> AsyncIterator[list[str]]:
        """Batches of frames after the first `after` chunks, live, up to the final frame
        (the turn writes its chunks paced already: app/llm/pacing.py)."""
        sent = min(after, len(self.frames) - 1 if self.final else len(self.frames))
        while True:
            if sent < len(self.frames):
                batch = self.frames[sent:]
                sent = len(self.frames)
                yield batch
                continue
            if self.final:
                return
            self._changed.clear()
            await self._changed.wait()
