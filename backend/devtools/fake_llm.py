"""A real HTTP server on loopback that stands in for an OpenAI-compatible LLM provider.

It streams chat completions in OpenRouter's SSE format and can be scripted to fail the
ways a real provider does: error statuses, slow or hanging streams, dropped connections,
mid-stream error events and malformed events; with a fault rate (`--fault-rate`), any
of those at random. A reply can call tools (`Reply(tool_calls=[Call(...)])`): the calls
stream as OpenAI's `delta.tool_calls` with their arguments split over several chunks,
ending with `finish_reason: tool_calls`; the request that carries the results back is
recorded like any other. `--tools` makes unscripted replies use the tools they are
offered: `record_contact` for a question with an e-mail address in it, then a short
thank-you once the result comes back.
of those at random. With `prompt_cache` (`--prompt-cache`) it reports prompt caching in
its usage as providers do (`prompt_tokens_details.cached_tokens`, `cache_write_tokens`).
"""

import argparse
import asyncio
import hashlib
import json
import logging
import random
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.core.serving import serve
from devtools.bots import bad_answer, good_answer

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions", "/api/v1/chat/completions")
PROCESSING_COMMENT = ": OPENROUTER PROCESSING\n\n"
IDLE_TIMEOUT = 2.0
MIDSTREAM_ERROR = {"error": {"message": "Upstream overloaded", "code": 502}}
LOREM = (
    "Alex is a backend engineer with eight years of experience building Python services, "
    "leading small teams, shipping APIs used by millions and mentoring junior developers."
)


@dataclass
class Call:
    """One scripted tool call; `arguments` (JSON text, or a dict to dump) arrive in `pieces`."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")
    pieces: int = 3

    @property
    def text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)

    def split(self) -> list[str]:
        """The arguments cut into `pieces` parts (fewer when shorter), in order."""
        text = self.text
        size = max(1, -(-len(text) // max(1, self.pieces)))
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@dataclass
class Reply:
    """One scripted answer. `*_after` switches act once N tokens have been sent.

    A non-200 status answers with an OpenAI-style error body instead of a stream.
    `hang` sends headers (and the comment) and then waits for the client to leave;
    `drop_after` aborts the connection mid-body; `error_after` sends OpenRouter's
    mid-stream error event and ends the stream without `[DONE]`.
    """

    tokens: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "."])
    status: int = 200
    retry_after: float | None = None
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    hang: bool = False
    drop_after: int | None = None
    error_after: int | None = None
    malformed_after: int | None = None
    usage: bool = True
    comments: bool = True
    multiline: bool = False
    finish_reason: str = "stop"
    name_model: bool = True  # False: chunks carry no `model`, as some local servers do
    tool_calls: list[Call] = field(default_factory=list)  # streamed after the tokens
    error_message: str | None = None  # the error body's message for a non-200 status

    @property
    def finish(self) -> str:
        """`tool_calls` for a reply that calls tools and names no other reason."""
        calls = self.tool_calls and self.finish_reason == "stop"
        return "tool_calls" if calls else self.finish_reason


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    peer: str = ""  # the client's address and port: the same for requests on one connection


@dataclass(frozen=True)
class _Completion:
    model: str | None
    prompt_tokens: int
    cache: tuple[int, int] | None = None  # cached and cache-written prompt tokens, if reported
    id: str = field(default_factory=lambda: f"gen-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        head = {"id": self.id, "object": "chat.completion.chunk", "created": self.created}
        named = {"model": self.model} if self.model is not None else {}
        return {**head, **named, "choices": choices, **extra}

    def token_event(self, token: str, *, multiline: bool) -> str:
        delta = {"role": "assistant", "content": token}
        text = json.dumps(self.chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
        return _sse(text.replace(", ", ",\n", 1) if multiline else text)

    def tool_call_events(self, calls: list[Call]) -> list[str]:
        """Each call's id and name first, then its arguments piece by piece."""
        events = []
        for index, call in enumerate(calls):
            pieces = call.split()
            head = {"index": index, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": pieces[0]}}  # fmt: skip
            parts = [head] + [{"index": index, "function": {"arguments": p}} for p in pieces[1:]]
            for part in parts:
                delta = {"role": "assistant", "content": None, "tool_calls": [part]}
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                events.append(_sse(json.dumps(self.chunk([choice]))))
        return events

    def usage(self, completion_tokens: int) -> dict[str, int]:
        total = self.prompt_tokens + completion_tokens
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total,
        }
        if self.cache is not None:
            cached, written = self.cache
            details = {"cached_tokens": cached, "cache_write_tokens": written}
            usage["prompt_tokens_details"] = details
        return usage

    def message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.tokens)}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.text}}
                for c in reply.tool_calls
            ]
        choice = {"index": 0, "message": message, "finish_reason": reply.finish}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(len(reply.tokens)),
        }


# Answers a request (its JSON body) from what it asks; None leaves it to the default reply.
Responder = Callable[[dict[str, Any]], Reply | None]


class _AbortConnectionError(Exception):
    """Raised inside a stream so that uvicorn aborts the connection mid-body."""


class _HideDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _AbortConnectionError))


class PromptCache:
    """A provider's prefix cache: the prompt up to the last `cache_control` breakpoint, or
    without one the system message (as providers that cache by themselves do). A prefix
    seen before is read from the cache; a new one is written to it, which providers report
    only for explicit breakpoints."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def usage(self, messages: list[Any]) -> tuple[int, int]:
        marked = [i for i, m in enumerate(messages) if _has_breakpoint(m)]
        if marked:
            prefix = messages[: marked[-1] + 1]
        elif messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
            prefix = messages[:1]
        else:
            return 0, 0
        key = hashlib.sha256(json.dumps(prefix, sort_keys=True).encode()).hexdigest()
        tokens = prompt_tokens({"messages": prefix})
        if key in self._seen:
            return tokens, 0
        self._seen.add(key)
        return 0, tokens if marked else 0


def _has_breakpoint(message: object) -> bool:
    content = message.get("content") if isinstance(message, dict) else None
    parts = content if isinstance(content, list) else []
    return any(isinstance(part, dict) and "cache_control" in part for part in parts)


class FakeLLM:
    def __init__(
        self,
        default: Reply | None = None,
        fault_rate: float = 0.0,
        responder: Responder | None = None,
        *,
        use_tools: bool = False,
        prompt_cache: bool = False,
    ) -> None:
        self.base_url = ""
        self.use_tools = use_tools  # unscripted replies call the tools they are offered
        self.prompt_cache = PromptCache() if prompt_cache else None
        self.requests: list[RecordedRequest] = []
        self.default = default or Reply()
        self.fault_rate = fault_rate  # unscripted requests fail this often, at random
        self.responder = responder  # unscripted requests it answers (devtools.bots)
        self.active_streams = 0
        self.cancelled_streams = 0
        self.app = Starlette(
            routes=[Route(path, self._chat, methods=["POST"]) for path in CHAT_PATHS]
        )
        self._queue: deque[Reply] = deque()
        self._closing = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def script(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    async def wait_idle(self) -> None:
        """Wait until no stream is open; a client's disconnect reaches the server a moment later.

        Raises TimeoutError after IDLE_TIMEOUT seconds.
        """
        async with asyncio.timeout(IDLE_TIMEOUT):
            await self._idle.wait()

    def close_streams(self) -> None:
        """End open and future streams early, so the server can shut down."""
        self._closing.set()

    async def _chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error_response(HTTPStatus.BAD_REQUEST, "Request body must be a JSON object")
        peer = f"{request.client.host}:{request.client.port}" if request.client else ""
        self.requests.append(RecordedRequest(request.url.path, dict(request.headers), body, peer))
        reply = self._queue.popleft() if self._queue else self._unscripted(body)
        if reply.status != HTTPStatus.OK:
            return _error_response(reply.status, reply.error_message, reply.retry_after)
        model = str(body.get("model", "fake/model")) if reply.name_model else None
        messages = body.get("messages")
        cache = None
        if self.prompt_cache is not None and isinstance(messages, list):
            cache = self.prompt_cache.usage(messages)
        completion = _Completion(model, prompt_tokens(body), cache)
        if body.get("stream"):
            events = self._stream(reply, completion)
            return StreamingResponse(events, media_type="text/event-stream")
        await self._pause(reply.first_token_delay)
        return JSONResponse(completion.message(reply))

    def _unscripted(self, body: dict[str, Any]) -> Reply:
        if self.responder is not None and (reply := self.responder(body)) is not None:
            return reply
        if self.fault_rate and random.random() < self.fault_rate:
            return random.choice(faults(self.default))
        if self.use_tools:
            return tool_reply(body, self.default)
        return self.default

    async def _stream(self, reply: Reply, completion: _Completion) -> AsyncIterator[str]:
        with self._track_stream():
            if reply.comments:
                yield PROCESSING_COMMENT
            if await self._pause(reply.first_token_delay) or (reply.hang and await self._pause()):
                return
            tokens = reply.tokens
            for index in range(len(tokens) + 1):
                if index == reply.drop_after:
                    raise _AbortConnectionError
                if index == reply.error_after:
                    yield _sse(json.dumps(MIDSTREAM_ERROR))
                    return
                if index == reply.malformed_after:
                    yield "data: {not json\n\n"
                if index == len(tokens):
                    break
                if index and await self._pause(reply.token_delay):
                    return
                yield completion.token_event(tokens[index], multiline=reply.multiline and not index)
            for event in completion.tool_call_events(reply.tool_calls):
                if await self._pause(reply.token_delay):
                    return
                yield event
            finish = {"index": 0, "delta": {}, "finish_reason": reply.finish}
            yield _sse(json.dumps(completion.chunk([finish])))
            if reply.usage:
                generated = len(tokens) + sum(len(call.split()) for call in reply.tool_calls)
                yield _sse(json.dumps(completion.chunk([], usage=completion.usage(generated))))
            yield _sse("[DONE]")

    @contextmanager
    def _track_stream(self) -> Iterator[None]:
        self.active_streams += 1
        self._idle.clear()
        try:
            yield
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled_streams += 1
            raise
        finally:
            self.active_streams -= 1
            if not self.active_streams:
                self._idle.set()

    async def _pause(self, seconds: float | None = None) -> bool:
        """Sleep (forever when None) unless the server is closing; True when it is.

        Always yields to the loop, so a client's disconnect can cancel the stream.
        """
        if seconds is not None and seconds <= 0:
            await asyncio.sleep(0)
        else:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)
        return self._closing.is_set()


def _sse(data: str) -> str:
    return "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"


def prompt_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    chars = sum(len(_text(m.get("content"))) for m in messages if isinstance(m, dict))
    calls = [m["tool_calls"] for m in messages if isinstance(m, dict) and m.get("tool_calls")]
    chars += len(json.dumps(calls)) if calls else 0
    chars += len(json.dumps(body["tools"])) if body.get("tools") else 0  # definitions count too
    return chars // 4


def _text(content: object) -> str:
    """A message's text: a string, or the `text` of each of its content parts."""
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


def _error_response(
    status: int, message: str | None = None, retry_after: float | None = None
) -> JSONResponse:
    if message is None:
        message = HTTPStatus(status).phrase if status in HTTPStatus else "Upstream error"
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    error = {"error": {"message": message, "code": status}}
    return JSONResponse(error, status_code=status, headers=headers)


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NAME = re.compile(r"\b(?:I am|I'm|my name is|this is)\s+([A-Z][\w'-]*(?: [A-Z][\w'-]*)?)")


def tool_reply(body: dict[str, Any], default: Reply) -> Reply:
    """What a model using its tools might say: a contact tool call when the last message
    has an e-mail address and `record_contact` is offered, thanks after its result."""
    messages = body.get("messages") or [{}]
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    if last.get("role") == "tool":
        return replace(default, tokens=["Thank you! ", "I have passed ", "your details on."])
    email = _EMAIL.search(str(last.get("content") or ""))
    if last.get("role") != "user" or email is None or "record_contact" not in offered:
        return default
    named = _NAME.search(str(last.get("content")))
    arguments = {"name": named[1] if named else "Visitor", "email": email[0]}
    return replace(default, tokens=[], tool_calls=[Call("record_contact", arguments)])


def faults(reply: Reply) -> list[Reply]:
    """Each way a provider fails, with `reply`'s tokens and timing."""
    half = max(1, len(reply.tokens) // 2)
    return [
        *(replace(reply, status=status, retry_after=0.1) for status in (429, 500)),
        replace(reply, drop_after=half),
        replace(reply, error_after=half),
        replace(reply, malformed_after=half),
        replace(reply, hang=True),
    ]


def answering(answer: Callable[[dict[str, Any]], str], chunk: int = 5) -> Responder:
    """A responder streaming `answer(body)` in chunks of `chunk` characters."""

    def respond(body: dict[str, Any]) -> Reply:
        text = answer(body)
        return Reply(tokens=[text[i : i + chunk] for i in range(0, len(text), chunk)] or [""])

    return respond


BOTS: dict[str, Responder] = {"good": answering(good_answer), "bad": answering(bad_answer)}


def lorem_tokens(count: int) -> list[str]:
    words = LOREM.split()
    return [f"{' ' if i else ''}{words[i % len(words)]}" for i in range(count)]


@contextmanager
def _hiding_dropped_connections() -> Iterator[None]:
    logger = logging.getLogger("uvicorn.error")
    hide = _HideDroppedConnections()
    logger.addFilter(hide)
    try:
        yield
    finally:
        logger.removeFilter(hide)


@asynccontextmanager
async def start_fake_llm(
    default: Reply | None = None, responder: Responder | None = None
) -> AsyncIterator[FakeLLM]:
    """Serve a FakeLLM on a free loopback port in the running event loop."""
    fake = FakeLLM(default, responder=responder)
    with _hiding_dropped_connections():
        async with serve(fake.app, lifespan="off") as port:
            fake.base_url = f"http://127.0.0.1:{port}/v1"
            try:
                yield fake
            finally:
                fake.close_streams()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible LLM.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--token-delay", type=float, default=0.02)
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="0..1: random failures")
    parser.add_argument("--tools", action="store_true", help="call the tools it is offered")
    parser.add_argument(
        "--bot",
        choices=sorted(BOTS),
        help="answer from the question: `good` keeps to the resume and its rules, `bad` "
        "invents, obeys injections, writes poems and leaks its prompt (devtools.bots)",
    )
    parser.add_argument("--prompt-cache", action="store_true", help="report cached tokens")
    parser.add_argument("--ssl-certfile", help="serve https with this certificate (PEM)")
    parser.add_argument("--ssl-keyfile", help="the certificate's key (PEM)")
    parser.add_argument(
        "--keep-alive",
        type=int,
        default=5,
        help="seconds an idle connection stays open (uvicorn's 5 by default; 400 behind "
        "Cloudflare, as OpenRouter is)",
    )
    args = parser.parse_args(argv)
    default = Reply(
        tokens=lorem_tokens(args.tokens),
        token_delay=args.token_delay,
        first_token_delay=args.first_token_delay,
    )
    fake = FakeLLM(
        default,
        args.fault_rate,
        BOTS[args.bot] if args.bot else None,
        use_tools=args.tools,
        prompt_cache=args.prompt_cache,
    )
    config = uvicorn.Config(
        fake.app,
        host=args.host,
        port=args.port,
        log_level="warning",
        lifespan="off",
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        timeout_keep_alive=args.keep_alive,
    )
    scheme = "https" if args.ssl_certfile else "http"
    print(f"Fake LLM serving at {scheme}://{args.host}:{args.port}/v1", flush=True)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
