"""`resume-chat serve` against oversized and unfinished input, as a real process.

The acceptance test of issue 13 part 1: ten sockets each sending a 15 MB frame, then
five concurrent 50 MB POST bodies, raise the server's RSS by less than 64 MiB and each
gets a clear refusal. `flood()` prints the figures; run the same against plain
`uvicorn app.main:app` to see what the defaults allowed.
"""

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from devtools.fake_llm import FakeLLM
from tests.support.app import uvicorn_process

MB = 1_000_000
FRAME_BYTES = 15 * MB
BODY_BYTES = 50 * MB
RSS_LIMIT = 64 * 2**20


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class Flood:
    baseline: int = 0
    peak: int = 0
    frames: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)

    @property
    def rise(self) -> int:
        return self.peak - self.baseline

    def report(self) -> str:
        return (
            f"RSS {self.baseline / 2**20:.0f} -> {self.peak / 2**20:.0f} MiB "
            f"(rise {self.rise / 2**20:.0f} MiB); frames: {self.frames}; bodies: {self.bodies}"
        )


async def _sample(pid: int, flood: Flood) -> None:
    while True:
        flood.peak = max(flood.peak, rss(pid))
        await asyncio.sleep(0.02)


async def _big_frame(port: int) -> str:
    """Send one 15 MB message frame (deflate offered, as websockets does); how it was refused."""
    frame = '{"type": "message", "data": "' + "a" * FRAME_BYTES + '"}'
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws", max_size=None, open_timeout=30) as ws:
            await ws.recv()  # the session event
            await ws.send(frame)
            async with asyncio.timeout(30):
                reply = json.loads(await ws.recv())
            return f"{reply['type']}:{reply.get('data', {}).get('code')}"
    except ConnectionClosed as closed:
        return f"closed:{closed.rcvd.code if closed.rcvd else 'none'}"


async def _body_chunks() -> AsyncIterator[bytes]:
    yield b'{"message": "'
    for _ in range(BODY_BYTES // MB):
        yield b"a" * MB
    yield b'"}'


async def _big_body(port: int) -> str:
    length = BODY_BYTES + len(b'{"message": "') + len(b'"}')
    async with httpx.AsyncClient(timeout=60) as http:
        reply = await http.post(
            f"http://127.0.0.1:{port}/api/chat",
            content=_body_chunks(),
            headers={"Content-Type": "application/json", "Content-Length": str(length)},
        )
    code = reply.json().get("error", {}).get("code") if reply.content else None
    return f"{reply.status_code}:{code}"


async def flood(port: int, pid: int) -> Flood:
    """Ten 15 MB frames, then five concurrent 50 MB bodies, sampling the server's RSS."""
    result = Flood(baseline=rss(pid))
    result.peak = result.baseline
    sampler = asyncio.create_task(_sample(pid, result))
    try:
        result.frames = list(await asyncio.gather(*(_big_frame(port) for _ in range(10))))
        result.bodies = list(await asyncio.gather(*(_big_body(port) for _ in range(5))))
        await asyncio.sleep(0.5)  # memory freed late still counts
    finally:
        sampler.cancel()
    return result


async def test_oversized_frames_and_bodies_are_refused_without_buffering_them(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    settings = {
        "openrouter_api_key": "sk-test",
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "log_level": "WARNING",
    }
    async with uvicorn_process(**settings) as (port, process):
        result = await flood(port, process.pid)
    print(result.report())
    assert result.rise < RSS_LIMIT, result.report()
    # A frame past twice WS_MAX_FRAME_BYTES is refused by the server before it is buffered.
    assert result.frames == ["closed:1009"] * 10
    assert result.bodies == ["413:content_too_large"] * 5


async def _raw(port: int, request: bytes, *, wait: float = 30) -> tuple[bytes, float]:
    """Send raw bytes and read the reply until the server closes; with how long it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(request)
    try:
        async with asyncio.timeout(wait):
            reply = await reader.read()
    finally:
        writer.close()
    return reply, time.monotonic() - started


async def test_headers_must_arrive_in_time_and_in_bounds(fake_llm: FakeLLM, tmp_path: Path) -> None:
    settings = {
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "http_header_timeout": "1",
    }
    async with uvicorn_process(**settings) as (port, _):
        silent, silent_after = await _raw(port, b"")
        slow, slow_after = await _raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        big_headers = (b"X-Big: " + b"a" * 100 + b"\r\n") * 700  # 73 KB
        huge, _ = await _raw(port, b"GET /health HTTP/1.1\r\n" + big_headers)
        handshake, _ = await _raw(port, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n")
        fine, _ = await _raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for reply, after in ((silent, silent_after), (slow, slow_after)):
        assert reply.startswith(b"HTTP/1.1 408 "), reply
        assert b'"code": "request_timeout"' in reply
        assert 0.9 < after < 5
    assert huge.startswith(b"HTTP/1.1 431 "), huge[:200]
    assert b'"code": "headers_too_large"' in huge
    assert handshake.startswith(b"HTTP/1.1 408 "), handshake
    assert fine.startswith(b"HTTP/1.1 200 "), fine
    assert b"server:" not in fine.lower()


async def _trickle(port: int, opening: bytes, trickled: bytes) -> tuple[bytes, float]:
    """Send `opening` at once, then `trickled` a byte every 0.1 s (never finishing the
    headers); the reply and how long after the trickle began the server closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(opening)
    if opening:
        head = await reader.readuntil(b"\r\n\r\n")  # a whole first response, kept alive
        length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert length, head
        await reader.readexactly(int(length[1]))

    async def drip() -> None:
        for byte in trickled:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    started = time.monotonic()
    dripping = asyncio.create_task(drip())
    try:
        async with asyncio.timeout(15):
            reply = await reader.read(4096)
            while not reader.at_eof():
                reply += await reader.read(4096)
    except ConnectionResetError:
        reply = b"reset"  # closed while the client was still writing
    finally:
        dripping.cancel()
        writer.close()
    return reply, time.monotonic() - started


async def test_headers_trickled_a_byte_at_a_time_are_cut_off(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    """Each byte arriving in time does not restart the deadline: it covers the whole header,
    for plain requests, WebSocket handshakes and a kept-alive connection's next request."""
    settings = {
        "openrouter_base_url": fake_llm.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        "http_header_timeout": "2",
    }
    endless = b"X-Padding: " + b"a" * 1000  # 100 s at 10 bytes a second
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    async with uvicorn_process(**settings) as (port, _):
        cases = {
            "request": await _trickle(port, b"", request + endless),
            "handshake": await _trickle(port, b"", handshake + endless),
            "kept alive": await _trickle(port, request + b"\r\n", request + endless),
        }
    for name, (reply, after) in cases.items():
        print(f"{name}: closed after {after:.1f} s: {reply[:30]!r}")
        assert reply.startswith(b"HTTP/1.1 408 ") or reply == b"reset", (name, reply)
        assert after < 10, (name, after)  # not the 100 s the trickle would last
