"""Streaming chat completions from OpenRouter or any OpenAI-compatible API.

`stream_chat` yields text deltas, then one `Completion`. Retries (tenacity) happen only
while opening the stream, so a retry can never repeat text the visitor already saw.
Every failure leaves as `LLMUnavailableError` or `LLMTimeoutError`.
"""

import asyncio
import email.utils
import functools
import json
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from app.core.config import Settings
from app.core.errors import LLMRejectedError, LLMTimeoutError, LLMUnavailableError
from app.core.logger import get_logger
from app.llm.caching import PromptCache
from app.llm.pacing import Pace
from app.llm.sse import (
    DRAIN_SECONDS,
    EventParser,
    ReadDeadline,
    StreamState,
    drain,
    require_event_stream,
)
from app.llm.tool_calls import ToolCall, ToolOffer, ToolSupport, without_tools
from app.llm.transport import AiohttpTransport, on_body_end, raw_body

logger = get_logger(__name__)

ChatMessage = Mapping[str, Any]  # content is text; tool rounds add tool_calls


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int  # all input tokens, cached and cache-written ones included
    completion_tokens: int
    cached_tokens: int = 0  # read from the provider's prompt cache
    cache_write_tokens: int = 0  # written to it (billed above the prompt price by some)

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True, slots=True)
class Completion:
    finish_reason: str
    usage: TokenUsage | None
    model: str | None
    tool_calls: tuple[ToolCall, ...] = ()


StreamItem = str | Completion


class UpstreamStatusError(Exception):
    """A non-200 answer while opening the stream; retried when 429 or 5xx."""

    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.retry_after = retry_after


class _StopPastDeadline(stop_base):
    """Stop retrying when the next wait would end after the deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return asyncio.get_running_loop().time() + retry_state.upcoming_sleep >= self.deadline


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once per process: loading the CA bundle takes
    tens of milliseconds, which every app started in the same process would pay again."""
    return httpx.create_ssl_context()


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one pooled client the app shares for every stream.

    Reads have no limit of their own: `LLMClient` holds every wait to the first-token,
    between-chunk and whole-answer limits itself (keep-alive comments must not reset them),
    and a read limit would re-arm a loop timer on every network read, once per token.
    """
    timeout = httpx.Timeout(
        connect=settings.llm_connect_timeout,
        read=None,
        write=settings.llm_connect_timeout,
        pool=settings.llm_connect_timeout,
    )
    # Every connection is kept alive between answers (aiohttp's pool has no per-request
    # scan), for `LLM_KEEPALIVE_SECONDS`: httpx's 5 s would end it while a visitor reads.
    limits = httpx.Limits(
        max_connections=settings.llm_max_connections,
        keepalive_expiry=settings.llm_keepalive_seconds,
    )
    return httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport(limits, _tls_context))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class LLMClient:
    def __init__(self, http: httpx.AsyncClient, settings: Settings) -> None:
        self._http = http
        self._settings = settings
        # Parsed once: httpx parses a URL given as text, and builds headers given as a
        # dict, again for every request.
        self._url = httpx.URL(f"{settings.openrouter_base_url}/chat/completions")
        headers = {
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
            "HTTP-Referer": settings.app_url,
            "X-Title": settings.app_title,
        }
        self._tools = ToolSupport()
        self._backoff = wait_exponential_jitter(
            multiplier=0.5, max=settings.llm_retry_max_wait, jitter=0.5
        )
        self._cache = PromptCache(settings.llm_prompt_cache, openrouter=settings.is_openrouter)
        if settings.openrouter_api_key is not None:
            key = settings.openrouter_api_key.get_secret_value()
            headers["Authorization"] = f"Bearer {key}"
        self._headers = httpx.Headers(headers)

    @property
    def model(self) -> str:
        return self._settings.llm_model

    async def stream_chat(
        self,
        messages: Sequence[ChatMessage],
        model: str | None = None,
        route: Sequence[str] = (),
        tools: ToolOffer | None = None,
        pace: Pace | None = None,
    ) -> AsyncGenerator[StreamItem]:
        """Stream one answer from `model` (default LLM_MODEL).

        `route` lists models for the provider itself to try in order (OpenRouter's
        `models` parameter); the chunks then name the model that answered. `tools` are
        offered unless the model refused them before; a refusal is asked again without.
        The text deltas of one read of the stream come as one text; with `pace`, a read
        waits after a chunk went out (app/llm/pacing.py), so it takes all that came meanwhile.
        """
        if not self._settings.llm_configured:
            raise LLMRejectedError(
                "The assistant is not configured yet: the owner has to set OPENROUTER_API_KEY."
            )
        loop = asyncio.get_running_loop()
        end = loop.time() + self._settings.llm_total_timeout
        first_token_deadline = min(end, loop.time() + self._settings.llm_first_token_timeout)
        try:
            async with asyncio.timeout_at(first_token_deadline):
                payload = self._payload(messages, model or self.model, route)
                response = await self._open_offering(payload, tools, first_token_deadline)
        except TimeoutError as exc:
            raise LLMTimeoutError() from exc
        try:
            async for item in self._read_stream(response, first_token_deadline, end, pace):
                yield item
        finally:
            await response.aclose()

    def _payload(
        self, messages: Sequence[ChatMessage], model: str, route: Sequence[str]
    ) -> dict[str, Any]:
        extra = {"models": list(route)} if route else {}
        payload = extra | {
            "model": model,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": self._settings.llm_temperature,
            "max_tokens": self._settings.llm_max_tokens,
        }
        return self._cache.apply(payload, route or [model])

    async def _open_offering(
        self, payload: dict[str, Any], tools: ToolOffer | None, deadline: float
    ) -> httpx.Response:
        offered = self._tools.offer(payload, payload["model"], tools)
        try:
            return await self._open_stream(payload, deadline)
        except LLMUnavailableError as error:
            refusal = error.__cause__
            if not (
                offered
                and isinstance(refusal, UpstreamStatusError)
                and self._tools.refused(payload["model"], refusal.status, str(refusal))
            ):
                raise
        return await self._open_stream(without_tools(payload), deadline)

    def _wait(self, state: RetryCallState) -> float:
        """Honour the provider's Retry-After; otherwise capped exponential backoff."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, UpstreamStatusError) and error.retry_after is not None:
            return error.retry_after
        return self._backoff(state)

    def _retryable(self, error: BaseException) -> bool:
        if isinstance(error, UpstreamStatusError):
            waits_too_long = (error.retry_after or 0) > self._settings.llm_retry_max_wait
            return (error.status == 429 or error.status >= 500) and not waits_too_long
        return isinstance(error, httpx.TransportError)

    async def _open_stream(self, payload: dict[str, Any], deadline: float) -> httpx.Response:
        """Send the request, retrying while a retry can still beat the first-token deadline."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(self._retryable),
            stop=stop_after_attempt(self._settings.llm_max_retries + 1)
            | _StopPastDeadline(deadline),
            wait=self._wait,
            reraise=True,
            before_sleep=_log_retry,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send(payload)
        except UpstreamStatusError as exc:
            raise _status_error(exc) from exc
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError() from exc
        except httpx.TransportError as exc:
            raise LLMUnavailableError(
                "The assistant's model provider cannot be reached right now. Please try again."
            ) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _send(self, payload: dict[str, Any]) -> httpx.Response:
        content = orjson.dumps(payload)  # the bytes httpx's json= sends, for less CPU
        request = self._http.build_request(
            "POST", self._url, content=content, headers=self._headers
        )
        response = await self._http.send(request, stream=True)
        if response.status_code == 200:
            return response
        try:
            body = (await response.aread()).decode("utf-8", "replace")
        finally:
            await response.aclose()
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise UpstreamStatusError(response.status_code, retry_after, _error_detail(body))

    async def _read_stream(
        self, response: httpx.Response, deadline: float, end: float, pace: Pace | None
    ) -> AsyncIterator[StreamItem]:
        """Text deltas, then the `Completion`; each wait for bytes is held to `deadline`."""
        loop = asyncio.get_running_loop()
        raw = _body(response)
        if pace is not None:
            pace.start()
            on_body_end(response, pace.end)
        parser, state = EventParser(), StreamState()
        waits = ReadDeadline(deadline)
        finished = ended = False
        try:
            require_event_stream(response)
            while not (finished or ended):
                if pace is not None:
                    await pace.wait()
                data = await waits.read(raw)
                ended = data is None
                texts: list[str] = []  # this read's, given as one: layers above pay per item
                try:
                    for event in parser.end() if data is None else parser.feed(data):
                        if finished := event == b"[DONE]":
                            break
                        texts += state.add(event)
                except LLMUnavailableError:  # an error event, or a broken one: the text before it
                    if texts:
                        yield "".join(texts)
                    raise
                if texts:
                    waits.move(min(end, loop.time() + self._settings.llm_chunk_timeout))
                    yield "".join(texts)
            if finished:
                await drain(raw, min(waits.at, loop.time() + DRAIN_SECONDS))
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LLMTimeoutError() from exc
        except httpx.TransportError as exc:
            raise LLMUnavailableError(
                "The connection to the model provider broke while answering."
            ) from exc
        finally:
            waits.close()
            await raw.aclose()
        if state.finish_reason is None and not finished:
            raise LLMUnavailableError("The model provider ended the answer unexpectedly.")
        usage = TokenUsage(*state.usage) if state.usage is not None else None
        yield Completion(
            state.finish_reason or "stop", usage, state.model, state.tool_calls.calls()
        )


def _body(response: httpx.Response) -> AsyncGenerator[bytes]:
    """The body's bytes as they arrive; httpx's decoding layers only for a compressed one.

    Each read of a stream goes through every layer once per token: the raw body skips
    two generators, and equals `aiter_bytes` for an uncompressed body."""
    if response.headers.get("content-encoding", "identity") == "identity":
        return raw_body(response)
    return cast(AsyncGenerator[bytes], response.aiter_bytes())


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.warning("model provider attempt %d failed: %r", state.attempt_number, error)


def _error_detail(body: str) -> str:
    try:
        error = json.loads(body).get("error", {})
        return str(error.get("message", body))[:300]
    except (ValueError, AttributeError):
        return body[:300]


def _status_error(exc: UpstreamStatusError) -> LLMUnavailableError:
    logger.error("model provider refused the request: %s", exc)
    if exc.status == 429:
        return LLMUnavailableError(
            "The assistant is receiving too many requests right now. Please try again shortly."
        )
    if exc.status in (401, 402, 403):
        return LLMRejectedError(
            "The assistant is unavailable: the model provider refused its credentials or credit."
        )
    return LLMUnavailableError(
        f"The assistant is unavailable right now (the model provider answered {exc.status})."
    )
