"""What the reverse-proxy tests share: a streamed answer's routes, and timing its first text.

test_reverse_proxy.py (nginx) and test_caddy.py (Caddy) run the same checks through their
proxies; both stand-in models write TOKENS, TOKEN_DELAY seconds apart.
"""

import time
from collections.abc import Callable

import httpx

from tests.support.nginx import client_tls

TOKENS = [f"word{i} " for i in range(10)]
TOKEN_DELAY = 0.3  # an answer takes about 3 s to write


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
