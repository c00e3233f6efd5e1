"""A resume's excerpt index (`app.resume.excerpt_index`), built the first time an answer
needs one.

Most deployments (those with a model) never answer from excerpts, so nothing of the index
is imported at start-up: its module, its topics and passages, bm25s and numpy load with
the first excerpt answer, in a thread.
"""

import asyncio
from typing import TYPE_CHECKING

from app.resume.loader import Resume

if TYPE_CHECKING:
    from app.resume.excerpt_index import ExcerptIndex


class Excerpts:
    """A resume's `ExcerptIndex`, built the first time an answer needs one."""

    def __init__(self, resume: Resume) -> None:
        self._resume = resume
        self._index: ExcerptIndex | None = None
        self._building = asyncio.Lock()

    async def index(self) -> "ExcerptIndex":
        """Built in a thread, once: importing bm25s and numpy takes a fraction of a second."""
        async with self._building:
            if self._index is None:
                self._index = await asyncio.to_thread(_build, self._resume)
        return self._index


def _build(resume: Resume) -> "ExcerptIndex":
    from app.resume.excerpt_index import ExcerptIndex

    return ExcerptIndex.build(resume)
