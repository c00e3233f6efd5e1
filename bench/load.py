"""The load generator, run by `run.py` in its own process; prints one JSON result.

Modes:
  app    N WebSocket sessions at once; each waits for `session`, then asks K questions
         back to back, timing the first `chunk` and the `done` of each.
  floor  the same load straight to the provider: N clients each make K streaming
         chat-completion requests, timing the first token and `[DONE]`.
  idle   opens N sessions, prints a `ready` line once all have their `session` frame,
         holds them until a line arrives on stdin, then closes them.

Each first warms up (untimed), prints a `warm` line and waits for a line on stdin, so
that the caller can read the servers' CPU counters just before the measured phase.
"""

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from stats import Summary, summarize
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin

QUESTIONS = (
    "What does she do now?",
    "Which languages and tools has she used most?",
    "Tell me about a project she led.",
    "Where did she study?",
)
MAX_FRAME = 1 << 20


@dataclass
class Tally:
    """What every client of one phase measured, in seconds."""

    connect: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    asked: int = 0
    wall: float = 0.0


def question_for(index: int) -> str:
    return QUESTIONS[index % len(QUESTIONS)]


async def open_session(url: str, origin: str | None, tally: Tally) -> ClientConnection:
    """Connect and wait for the `session` frame, recording the time it took."""
    start = time.perf_counter()
    ws = await connect(
        url,
        origin=Origin(origin) if origin else None,
        open_timeout=None,
        ping_interval=None,
        max_size=MAX_FRAME,
    )
    frame = json.loads(await ws.recv())
    if frame["type"] != "session":
        await ws.close()
        raise ProtocolError(frame["data"]["code"] if frame["type"] == "error" else frame["type"])
    tally.connect.append(time.perf_counter() - start)
    return ws


class ProtocolError(Exception):
    """The server sent something other than what the protocol promises here."""


async def ask(ws: ClientConnection, question: str, tally: Tally) -> None:
    tally.asked += 1
    start = time.perf_counter()
    await ws.send(json.dumps({"type": "message", "data": question}))
    first: float | None = None
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "chunk":
            first = first or time.perf_counter() - start
        elif frame["type"] == "done":
            if frame["data"].get("source", "model") != "model":
                tally.errors[f"answered_by_{frame['data']['source']}"] += 1
                return
            tally.first.append(first if first is not None else time.perf_counter() - start)
            tally.done.append(time.perf_counter() - start)
            return
        elif frame["type"] == "error":
            tally.errors[frame["data"]["code"]] += 1
            return


async def _guarded(tally: Tally, work: Awaitable[None]) -> None:
    """Run one client's work, counting its failure by kind instead of raising."""
    try:
        await work
    except InvalidStatus as exc:
        tally.errors[f"http_{exc.response.status_code}"] += 1
    except ProtocolError as exc:
        tally.errors[str(exc)] += 1
    except ConnectionClosed:
        tally.errors["connection_closed"] += 1
    except (InvalidHandshake, OSError, httpx.TransportError) as exc:
        tally.errors[type(exc).__name__] += 1


async def _chat_session(url: str, origin: str | None, questions: int, tally: Tally) -> None:
    ws = await open_session(url, origin, tally)
    async with ws:
        for index in range(questions):
            await ask(ws, question_for(index), tally)


async def _floor_client(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], questions: int, tally: Tally
) -> None:
    for index in range(questions):
        tally.asked += 1
        payload = body | {"messages": [*body["messages"], _user(question_for(index))]}
        start = time.perf_counter()
        first: float | None = None
        async with http.stream("POST", url, json=payload) as response:
            if response.status_code != httpx.codes.OK:
                tally.errors[f"http_{response.status_code}"] += 1
                continue
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                first = first or time.perf_counter() - start
                if line == "data: [DONE]":
                    tally.first.append(first)
                    tally.done.append(time.perf_counter() - start)
                    break
            else:
                tally.errors["stream_ended_early"] += 1


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _floor_body(resume: Path) -> dict[str, Any]:
    """About the request the app sends: the resume as the system prompt, then the question."""
    system = "Answer questions about this resume only.\n\n" + resume.read_text()
    return {
        "model": "openai/gpt-4o-mini",
        "messages": [{"role": "system", "content": system}],
        "temperature": 0.3,
        "max_tokens": 700,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def _gather(tally: Tally, works: list[Coroutine[Any, Any, None]], limit_s: float) -> float:
    """Run every client's work at once; the wall time, or the timeout as an error."""
    start = time.perf_counter()
    tasks = [asyncio.create_task(_guarded(tally, work)) for work in works]
    _, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()
        tally.errors["timeout"] += 1
    await asyncio.gather(*pending, return_exceptions=True)
    return time.perf_counter() - start


def _result(tally: Tally, sessions: int) -> dict[str, Any]:
    wall = tally.wall
    timings: dict[str, Summary] = {
        "connect_ms": summarize(tally.connect),
        "first_ms": summarize(tally.first),
        "done_ms": summarize(tally.done),
    }
    return {
        "sessions": sessions,
        "asked": tally.asked,
        "answered": len(tally.done),
        "wall_s": round(wall, 3),
        "answers_per_s": round(len(tally.done) / wall, 2) if wall > 0 else 0.0,
        **timings,
        "errors": dict(sorted(tally.errors.items())),
    }


async def chat_load(args: argparse.Namespace, sessions: int, questions: int) -> Tally:
    tally = Tally()
    works = [_chat_session(args.url, args.origin, questions, tally) for _ in range(sessions)]
    tally.wall = await _gather(tally, works, args.timeout)
    return tally


async def floor_load(args: argparse.Namespace, sessions: int, questions: int) -> Tally:
    tally = Tally()
    body = _floor_body(args.resume)
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(args.timeout)) as http:
        works = [_floor_client(http, args.url, body, questions, tally) for _ in range(sessions)]
        tally.wall = await _gather(tally, works, args.timeout)
    return tally


async def idle_load(args: argparse.Namespace) -> Tally:
    tally = Tally()
    sockets: list[ClientConnection] = []

    async def hold() -> None:
        sockets.append(await open_session(args.url, args.origin, tally))

    tally.wall = await _gather(tally, [hold() for _ in range(args.sessions)], args.timeout)
    ready = _result(tally, args.sessions) | {"open": len(sockets)}
    print(json.dumps({"ready": ready}), flush=True)
    await _wait_for_line()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return tally


async def _wait_for_line() -> None:
    await asyncio.to_thread(sys.stdin.readline)


async def warm_up(args: argparse.Namespace) -> None:
    """Untimed questions, so that neither side pays its first-use costs in the figures."""
    if args.warmup <= 0:
        return
    load = floor_load if args.mode == "floor" else chat_load
    tally = await load(args, args.warmup, 1)
    if not tally.done:
        raise SystemExit(f"the warm-up got no answer: {dict(tally.errors)}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, say so, wait for the go (a line on stdin), then run the measured phase."""
    await warm_up(args)
    print(json.dumps({"warm": True}), flush=True)
    await _wait_for_line()
    cpu = _cpu_s()
    if args.mode == "idle":
        tally = await idle_load(args)
    else:
        load = floor_load if args.mode == "floor" else chat_load
        tally = await load(args, args.sessions, args.questions)
    return _result(tally, args.sessions) | {"loadgen_cpu_s": round(_cpu_s() - cpu, 3)}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("app", "floor", "idle"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--questions", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2, help="untimed sessions first")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for the phase")
    parser.add_argument("--origin", default=None)
    parser.add_argument("--resume", type=Path, default=Path("data/resume.md"))
    return parser.parse_args(argv)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (as with uvicorn[standard]): the generator must not be the limit."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    result = asyncio.run(run(args), loop_factory=_loop_factory())
    print(json.dumps({"result": result}), flush=True)


if __name__ == "__main__":
    main()
