"""Keeps the system prompt out of answers while they stream.

The prompt carries a canary, a random marker new in every process. An answer that repeats
the canary, or a long verbatim run of the prompt's instructions (`LEAK_RUN_CHARS`, compared
without case, Markdown marks or extra spaces), is cut at once: the visitor gets a polite
sentence instead, and the turn ends with finish reason `leak_blocked`.

Text is passed on as it comes except the shortest tail that could still grow into a leak:
the longest end of the answer that occurs in the instructions, or begins the canary (a
normal answer: a few characters). The model's chunks are passed on whole while the text
held back stays within `LEAK_RUN_CHARS`, and split only beyond that, so a clean answer
reaches the visitor in the chunks the model sent. A turn feeds it what one read of the
stream took (app/llm/pacing.py): a leak cuts that whole chunk, with any text before it.

Every run of `LEAK_RUN_CHARS` characters holds an aligned block of half that length, so a
chunk is searched block by block, and only a block found in the instructions is looked at
closely: a few substring searches per chunk, whatever its size.
"""

import contextlib
import functools
import re
import secrets
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from app.core.logger import get_logger
from app.llm.client import Completion, StreamItem

logger = get_logger(__name__)

LEAK_BLOCKED = "leak_blocked"
LEAK_RUN_CHARS = 60
REPLACEMENT = (
    "Sorry, I can't share how I'm set up. I'm happy to answer questions about {name}'s "
    "experience, skills and projects."
)
_FOLD = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'} | dict.fromkeys("*_`#>")
)
_SPACES = re.compile(r"\s+")


def new_canary() -> str:
    return f"rc-{secrets.token_hex(8)}"


@functools.cache
def process_canary() -> str:
    """This process's canary: the same for every prompt until the process ends."""
    return new_canary()


def normalise(text: str) -> str:
    """Lower case, straight quotes, no Markdown marks, every run of whitespace one space."""
    return _SPACES.sub(" ", text.casefold().translate(_FOLD)).strip()


@functools.lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    return char.casefold().translate(_FOLD)


@dataclass(frozen=True, slots=True)
class LeakPatterns:
    """What must not reach a visitor: the canary and the prompt's instructions."""

    canary: str
    instructions: str
    run_chars: int = LEAK_RUN_CHARS
    rules: str = field(init=False, repr=False)  # the instructions, normalised

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", normalise(self.instructions))

    def leaked(self, text: str) -> str | None:
        """What a whole text leaks ("canary" or "instructions"), or None."""
        guard = LeakGuard(self)
        guard.feed(text)
        return guard.tripped


class LeakGuard:
    """One answer's text, passed on once it cannot be the start of a leak."""

    def __init__(self, patterns: LeakPatterns) -> None:
        self._rules = patterns.rules
        self._run_chars = patterns.run_chars
        self._canary = normalise(patterns.canary)
        self._pending = ""  # raw text received but not yet passed on
        self._passed = 0  # raw characters passed on before it
        self._ends: deque[int] = deque()  # where each pending chunk ends (from the start)
        self._tail = ""  # the end of the normalised answer, enough for any pattern
        self._space = True  # the normalised answer ends with a space (or is empty)
        self._held = 0  # normalised characters at its end that could begin a leak
        self.tripped: str | None = None

    def feed(self, text: str) -> str:
        """The text that is safe to pass on now ("" when it all waits, or a leak tripped)."""
        if self.tripped:
            return ""
        folded = _SPACES.sub(" ", text.casefold().translate(_FOLD))
        if self._space and folded.startswith(" "):
            folded = folded[1:]
        if folded:
            self._space = folded.endswith(" ")
        seen = self._tail + folded
        if self._canary and self._canary in seen[-len(folded) - len(self._canary) + 1 :]:
            return self._trip("canary")
        if self._repeats_rules(seen[len(self._tail) - self._held :]):
            return self._trip("instructions")
        self._tail = seen[-max(self._run_chars, len(self._canary)) :]
        self._held = max(self._rules_end(self._held + len(folded)), self._canary_start())
        self._pending += text
        self._ends.append(self._passed + len(self._pending))
        return self._release()

    def flush(self) -> str:
        """The rest, once the answer has ended (or failed) without a leak."""
        rest = "" if self.tripped else self._pending
        self._passed += len(self._pending)
        self._pending = ""
        self._ends.clear()
        return rest

    def _repeats_rules(self, text: str) -> bool:
        """Some `run_chars` characters of `text` occur in the instructions."""
        size, half = self._run_chars, self._run_chars // 2
        if len(text) < size:
            return False
        for block in range(0, len(text) - half + 1, half):
            if text[block : block + half] in self._rules:
                starts = range(max(0, block - half), min(block, len(text) - size) + 1)
                if any(text[start : start + size] in self._rules for start in starts):
                    return True
        return False

    def _rules_end(self, most: int) -> int:
        """The length of the longest end of the answer found in the instructions: at most
        `most`, what was held back before plus what came since."""
        low, high = 0, min(len(self._tail), self._run_chars - 1, most)
        if high and self._tail[-high:] in self._rules:  # while a run grows, the first try finds it
            return high
        while low < high:  # an end found there has every shorter end found there too
            middle = (low + high + 1) // 2
            if self._tail[-middle:] in self._rules:
                low = middle
            else:
                high = middle - 1
        return low

    def _canary_start(self) -> int:
        """How many of the last characters begin the canary."""
        tail = self._tail[-len(self._canary) + 1 :] if len(self._canary) > 1 else ""
        at = tail.find(self._canary[:1])
        while at != -1:
            if self._canary.startswith(tail[at:]):
                return len(tail) - at
            at = tail.find(self._canary[:1], at + 1)
        return 0

    def _trip(self, what: str) -> str:
        self.tripped = what
        logger.warning("an answer repeated the prompt's %s; it was cut", what)
        self._pending = ""
        return ""

    def _release(self) -> str:
        """Whole chunks before the tail held back; part of one only if the rest is long."""
        safe = self._passed + self._raw_start(self._held)
        whole = self._passed
        while self._ends and self._ends[0] <= safe:
            whole = self._ends.popleft()
        end = self._passed + len(self._pending)
        cut = (whole if end - whole <= self._run_chars else safe) - self._passed
        released, self._pending = self._pending[:cut], self._pending[cut:]
        self._passed += cut
        return released

    def _raw_start(self, held: int) -> int:
        """Where, in the pending raw text, its last `held` normalised characters begin."""
        index, count, space = len(self._pending), 0, False
        while index > 0 and count < held:
            char = self._pending[index - 1]
            if char.isspace():
                count, space = count + (not space), True
            elif folded := _fold(char):
                count, space = count + len(folded), False
            index -= 1
        return index


async def guard_answer(
    items: AsyncGenerator[StreamItem], patterns: LeakPatterns, replacement: str
) -> AsyncGenerator[StreamItem]:
    """`items` with any leak cut: then `replacement` and a `leak_blocked` completion."""
    guard = LeakGuard(patterns)
    sent = False
    async with contextlib.aclosing(items):
        try:
            async for item in items:
                if isinstance(item, Completion):
                    if rest := guard.flush():
                        yield rest
                    yield item
                    return
                if safe := guard.feed(item):
                    sent = True
                    yield safe
                if guard.tripped:
                    break
        except Exception:  # the model failed: what was held back is no leak, pass it on
            if rest := guard.flush():
                yield rest
            raise
    if guard.tripped:
        yield f"\n\n{replacement}" if sent else replacement
        yield Completion(LEAK_BLOCKED, None, None)
