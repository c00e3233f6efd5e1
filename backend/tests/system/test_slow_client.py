"""A visitor who stops reading mid-answer: the socket is closed, the answer still stored.

A stress run: 6 MB pushed through a deliberately small receive window, past the kernel's
buffers, and a three-second stall.
"""

import asyncio
import socket

import pytest
from websockets.exceptions import ConnectionClosed

from devtools.fake_llm import FakeLLM, Reply
from tests.api.test_reattach import QUESTION
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import ChatClient, chat


async def _read_until_closed(client: ChatClient) -> None:
    """Read what the server managed to send before it gave up on the socket, to its close."""
    started = asyncio.get_running_loop().time()
    try:
        while True:
            async with asyncio.timeout(60):
                await client.connection.recv()
    finally:
        print(f"closed after {asyncio.get_running_loop().time() - started:.1f} s of reading")


async def _stored_history(port: int, session_id: str, seconds: float = 60) -> list[dict[str, str]]:
    """The conversation as stored once its answer is (the model may still be streaming the
    rest of it when the stalled socket is closed; on a busy machine, for several seconds)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        async with chat(port, session_id, max_size=None) as later:
            history: list[dict[str, str]] = later.session["data"]["history"]
        if history[-1]["role"] == "assistant" or asyncio.get_running_loop().time() > deadline:
            return history
        await asyncio.sleep(0.5)


async def test_a_client_that_stops_reading_is_closed_and_the_answer_still_stored(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    tokens = [f"{'lorem ipsum ' * 300}{i}\n" for i in range(1600)]  # 6 MB, over the kernel buffers
    fake_llm.script(Reply(tokens=tokens, token_delay=0.001))
    async with running_app(make_settings(ws_send_timeout=1.0)) as port:
        sock = socket.socket()  # a small receive window, so the server's buffer fills
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        async with chat(port, sock=sock, max_queue=1, max_size=None, compression=None) as stalled:
            await stalled.send(QUESTION)
            await asyncio.sleep(3)  # read nothing
            with pytest.raises(ConnectionClosed) as closed:
                await _read_until_closed(stalled)
        history = await _stored_history(port, stalled.session_id)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "client stopped reading")
    assert history[-1]["content"] == "".join(tokens)
