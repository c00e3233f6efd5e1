"""What the reverse-proxy tests share: the app behind a proxy, a WebSocket chat through it,
a streamed answer's routes and the time to its first text, two clients against one rate
limit, and a client that sends its header too slowly.

test_reverse_proxy.py (nginx) and test_caddy.py (Caddy) run the same checks through their
proxies; both stand-in models write TOKENS, TOKEN_DELAY seconds apart.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.nginx import Proxy, client_tls

TOKENS = [f"word{i} " for i in range(10)]
TOKEN_DELAY = 0.3  # an answer takes about 3 s to write


type Front = Callable[[int], AbstractAsyncContextManager[Proxy]]
"""A proxy in front of the app on a port: `nginx_in_front` or `caddy_in_front`."""


@asynccontextmanager
async def behind(
    front: Front,
    make_settings: SettingsFactory,
    **overrides: object,
) -> AsyncIterator[Proxy]:
    """The app, trusting the proxy on 127.0.0.1, with `front` (nginx or Caddy) before it."""
    settings = make_settings(trusted_proxies="127.0.0.1", **overrides)
    async with running_app(settings) as app_port, front(app_port) as proxy:
        yield proxy


async def websocket_chat(proxy: Proxy, question: str) -> tuple[Any, list[Any]]:
    """One question over the proxy's WebSocket: the session frame, and every frame of the
    answer up to its end (chunks may be joined: leak guard, coalescing)."""
    async with connect(proxy.ws_url, ssl=client_tls()) as socket:
        session = json.loads(await socket.recv())
        await socket.send(json.dumps({"type": "message", "data": question}))
        frames = [json.loads(await socket.recv())]
        while frames[-1]["type"] == "chunk":
            frames.append(json.loads(await socket.recv()))
    return session, frames


def client_from(address: str) -> httpx.AsyncClient:
    """An HTTPS client whose connections come from `address` (another loopback address)."""
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=client_tls())
    return httpx.AsyncClient(transport=transport, timeout=30)


def _rest(line: str) -> bool:
    return line.startswith("event: chunk")


def _ui(line: str) -> bool:
    return '"type":"text-delta"' in line


def _openai(line: str) -> bool:
    return '"content":"word' in line


STREAMS: dict[str, tuple[str, dict[str, object], Callable[[str], bool]]] = {
    "REST SSE": ("/api/chat", {"message": "Tell me more.", "stream": True}, _rest),
    "AI SDK": (
        "/api/ui/chat",
        {
            "id": "Hx9cTqLwA2mVb7Rk",
            "messages": [
                {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Tell me more."}]}
            ],
        },
        _ui,
    ),
    "OpenAI": (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "Tell me more."}], "stream": True},
        _openai,
    ),
}


async def first_chunk(
    url: str, body: dict[str, object], is_text: Callable[[str], bool]
) -> tuple[float, float]:
    """Seconds from the request to the answer's first text, and to the stream's end."""
    async with client_from("127.0.0.1") as http:
        started = time.monotonic()
        first: float | None = None
        async with http.stream("POST", url, json=body) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if first is None and is_text(line):
                    first = time.monotonic() - started
        assert first is not None
        return first, time.monotonic() - started


async def statuses_from_two_clients(url: str) -> tuple[list[int], int]:
    """Three questions from 127.0.0.2, claiming another address in X-Forwarded-For, then
    one from 127.0.0.3: the statuses the first got, and the second's."""
    question = {"message": "Hi?"}
    async with client_from("127.0.0.2") as first, client_from("127.0.0.3") as second:
        spoofed = {"X-Forwarded-For": "203.0.113.9"}
        statuses = [
            (await first.post(url, json=question, headers=spoofed)).status_code for _ in range(3)
        ]
        other = await second.post(url, json=question)
    return statuses, other.status_code


async def slow_header_client(port: int, host: str) -> tuple[bytes, float]:
    """A client that sends one more header line a second, never the blank line that ends
    the header: what it got back, and after how many seconds the proxy closed on it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls())
    started = time.monotonic()
    writer.write(f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode())

    async def trickle() -> None:
        for index in range(30):
            await asyncio.sleep(1)
            writer.write(f"X-Slow-{index}: 1\r\n".encode())
            await writer.drain()

    dripping = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(25):
            answer = await reader.read()
    except ConnectionResetError:
        answer = b""
    finally:
        dripping.cancel()
        writer.close()
    return answer, time.monotonic() - started
