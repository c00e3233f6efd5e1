"""The provider's event stream, read cheaply: event data from raw bytes, chunks with orjson.

`EventParser` follows the SSE rules httpx-sse implements (lines end with \\r\\n, \\r or
\\n; `:` starts a comment; `data` lines are joined with \\n; a blank line ends an event
once it has an `event`, `data`, `id` or `retry` field) but works on bytes and keeps only
each event's data. `StreamState.add` reads a chunk of the usual shape straight from
orjson's dicts; anything else (an `error`, unexpected types, JSON orjson refuses) goes
through the pydantic models, which decide what is malformed.
"""

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from app.core.errors import LLMUnavailableError
from app.core.logger import get_logger
from app.llm.tool_calls import ToolCallBuffer

logger = get_logger(__name__)

# After `[DONE]` the body's last bytes normally arrive at once; a provider that keeps the
# response open is not waited for longer than this (its connection is then not reused).
DRAIN_SECONDS = 0.25


class EventParser:
    """The data of each complete event in the bytes of an SSE body, as they arrive."""

    __slots__ = ("_cr", "_data", "_event", "_last_id", "_partial", "_retry")

    def __init__(self) -> None:
        self._partial = b""
        self._cr = False  # a trailing \r waits for the next bytes: it may start \r\n
        self._data: list[bytes] = []
        self._event = self._retry = False  # the current event has a (non-empty) one
        self._last_id = False  # SSE keeps the last event id across events

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._cr:
            chunk, self._cr = b"\r" + chunk, False
        if chunk.endswith(b"\r"):
            chunk, self._cr = chunk[:-1], True
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
        return [data for line in lines if (data := self._line(line)) is not None]

    def end(self) -> list[bytes]:
        """Events completed by the end of the body (its unterminated last line)."""
        if not self._partial and not self._cr:
            return []
        line, self._partial, self._cr = self._partial, b"", False
        data = self._line(line)
        return [] if data is None else [data]

    def _line(self, line: bytes) -> bytes | None:
        if not line:
            if not (self._data or self._event or self._retry or self._last_id):
                return None
            data = b"\n".join(self._data)
            self._data, self._event, self._retry = [], False, False
            return data
        if line[0] == 0x3A:  # ":" a comment, such as OpenRouter's keep-alive
            return None
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = bool(value)
        elif name == b"id" and b"\0" not in value:
            self._last_id = bool(value)
        elif name == b"retry":
            self._retry = self._retry or _is_int(value)
        return None


def _is_int(value: bytes) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


class ReadDeadline:
    """`asyncio.timeout_at` around each read of one stream, with one loop timer in all.

    A chunk pushes the deadline later on every token; asyncio.timeout_at would make and
    cancel a loop timer per read. Here the timer stays where it is and, when it goes off
    before the deadline, moves to it; only a deadline brought earlier re-arms it at once.
    A read that is waiting when the deadline passes is cancelled and raises TimeoutError,
    as with asyncio.timeout_at, and an outside cancellation stays a cancellation.
    """

    def __init__(self, at: float) -> None:
        self._loop = asyncio.get_running_loop()
        self.at = at
        self._timer = self._loop.call_at(at, self._ring)
        self._timer_at = at
        self._reader: asyncio.Task[Any] | None = None  # set while a read waits
        self._expired = False

    def move(self, at: float) -> None:
        self.at = at
        if at < self._timer_at:
            self._arm()

    def close(self) -> None:
        self._timer.cancel()

    async def read(self, source: AsyncIterator[bytes]) -> bytes | None:
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self._reader, self._expired = task, False
        if self._loop.time() >= self.at:
            self._expire()
        try:
            return await anext(source, None)
        except asyncio.CancelledError:
            if self._expired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._reader = None
            if self._expired and task.cancelling() > cancelling:
                task.uncancel()  # the read finished before the cancellation landed

    def _arm(self) -> None:
        self._timer.cancel()
        self._timer = self._loop.call_at(self.at, self._ring)
        self._timer_at = self.at

    def _ring(self) -> None:
        if self._loop.time() < self.at:
            self._arm()
            return
        self._timer_at = math.inf  # spent: the next `move` arms it again
        if self._reader is not None and not self._expired:
            self._expire()

    def _expire(self) -> None:
        assert self._reader is not None
        self._expired = True
        self._reader.cancel()


def require_event_stream(response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        logger.warning("model provider answered with %r, not an event stream", content_type)
        raise LLMUnavailableError("The connection to the model provider broke while answering.")


async def drain(raw: AsyncIterator[bytes], deadline: float) -> None:
    """Read the body's end after `[DONE]`, so its connection can be reused."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout_at(deadline):
            async for _ in raw:
                pass


@dataclass(slots=True)
class StreamState:
    """What the chunks so far said about the answer, besides its text."""

    finish_reason: str | None = None
    usage: tuple[int, int, int, int] | None = None  # prompt, completion, cached, cache-write
    model: str | None = None
    tool_calls: ToolCallBuffer = field(default_factory=ToolCallBuffer)

    def add(self, data: bytes) -> list[str]:
        """Take one chunk (an event's JSON); returns its text deltas in order."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        texts = self._add_usual(chunk) if type(chunk) is dict else None
        return self._add_validated(data) if texts is None else texts

    def _add_usual(self, chunk: dict[str, Any]) -> list[str] | None:
        """The chunk's texts when it has the usual shape, else None (and nothing taken)."""
        model, choices, usage = chunk.get("model"), chunk.get("choices", []), chunk.get("usage")
        if chunk.get("error") or not _optional(model, str) or type(choices) is not list:
            return None
        if usage is not None and not _usual_usage(usage):
            return None
        texts: list[str] = []
        calls: list[list[dict[str, Any]]] = []
        finish_reason = self.finish_reason
        for choice in choices:
            if type(choice) is not dict:
                return None
            delta, reason = choice.get("delta"), choice.get("finish_reason")
            content = delta.get("content") if type(delta) is dict else None
            if not (_optional(delta, dict) and _optional(content, str) and _optional(reason, str)):
                return None
            finish_reason = reason or finish_reason
            if content:
                texts.append(content)
            if delta and (tool_calls := delta.get("tool_calls")) is not None:
                if not ToolCallBuffer.well_formed(tool_calls):
                    return None
                calls.append(tool_calls)
        for tool_calls in calls:
            self.tool_calls.add(tool_calls)
        self.finish_reason, self.model = finish_reason, model or self.model
        if usage is not None:
            details = usage.get("prompt_tokens_details") or {}
            self.usage = (
                usage.get("prompt_tokens") or 0,
                usage.get("completion_tokens") or 0,
                details.get("cached_tokens") or 0,
                details.get("cache_write_tokens") or 0,
            )
        return texts

    def _add_validated(self, data: bytes) -> list[str]:
        chunk = _decode_chunk(data.decode("utf-8", "replace"))
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            usage = chunk.usage
            details = usage.prompt_tokens_details or _PromptDetails()
            self.usage = (
                usage.prompt_tokens or 0,
                usage.completion_tokens or 0,
                details.cached_tokens or 0,
                details.cache_write_tokens or 0,
            )
        texts: list[str] = []
        for choice in chunk.choices:
            self.finish_reason = choice.finish_reason or self.finish_reason
            if choice.delta and choice.delta.content:
                texts.append(choice.delta.content)
            if choice.delta and choice.delta.tool_calls:
                self.tool_calls.add([call.model_dump() for call in choice.delta.tool_calls])
        return texts


def _optional(value: object, kind: type) -> bool:
    return value is None or type(value) is kind


def _usual_usage(usage: object) -> bool:
    if type(usage) is not dict:
        return False
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    details = usage.get("prompt_tokens_details")
    if not (_optional(prompt, int) and _optional(completion, int) and _optional(details, dict)):
        return False
    return details is None or (
        _optional(details.get("cached_tokens"), int)
        and _optional(details.get("cache_write_tokens"), int)
    )


class _FunctionDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(BaseModel):
    index: int | None = None
    id: str | None = None
    function: _FunctionDelta | None = None


class _Delta(BaseModel):
    content: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _Choice(BaseModel):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class _Usage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None


class _Chunk(BaseModel):
    """The parts of an OpenAI `chat.completion.chunk` we use; anything else is ignored."""

    model: str | None = None
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: object = None


def _decode_chunk(data: str) -> _Chunk:
    try:
        chunk = _Chunk.model_validate_json(data)
    except ValidationError as exc:
        raise LLMUnavailableError("The model provider sent a malformed response.") from exc
    if chunk.error:
        detail = chunk.error.get("message") if isinstance(chunk.error, dict) else chunk.error
        logger.warning("model provider reported an error mid-stream: %s", detail)
        raise LLMUnavailableError("The model provider reported an error while answering.")
    return chunk
