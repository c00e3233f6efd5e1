"""How a turn paces its reading of the model's stream (`STREAM_CHUNK_INTERVAL`).

A model streams an answer a token at a time, and every read of the stream costs the same
steps whatever it carries: waking the turn, the layers between the socket and the text,
the leak guard, the answer's parts, a frame for every socket following it. So once the
turn has sent a chunk on, the stream's next read waits up to one interval: meanwhile the
tokens that arrive are only buffered by the HTTP client, and the read after the wait
takes them all, to be parsed, guarded and sent as one chunk (bench/PERFORMANCE.md,
issue 18).

Nothing waits more than it must: the first chunk goes as soon as it comes; a read waits
only after a chunk went out (not after text the leak guard held back); and a wait ends
at once when the stream's body has ended, so the answer's end is never held.
"""

import asyncio


class Pace:
    """One turn's pacing, shared by each stream the turn reads (tool rounds, fallbacks)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._due = False  # a chunk went out since the last read
        self._ended = False  # the body of the stream being read has ended
        self._waking: asyncio.Future[None] | None = None  # set while a read waits

    def sent(self) -> None:
        """A chunk went on to the visitor: the next read waits one interval."""
        self._due = self.interval > 0

    def start(self) -> None:
        """A new stream's body starts (called by its reader)."""
        self._ended = False

    def end(self) -> None:
        """The stream's body has ended: a wait ends now."""
        self._ended = True
        if self._waking is not None:
            _wake(self._waking)

    async def wait(self) -> None:
        """Before a read: one interval after a chunk went out, unless the body has ended."""
        if not self._due:
            return
        self._due = False
        if self._ended:
            return
        loop = asyncio.get_running_loop()
        self._waking = waking = loop.create_future()
        timer = loop.call_later(self.interval, _wake, waking)
        try:
            await waking
        finally:
            timer.cancel()
            self._waking = None


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)
