"""Clients that flood the socket: every frame is answered in order, and the chat goes on."""

import json

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

FLOOD = 400


async def test_a_flood_of_frames_is_answered_frame_by_frame_and_the_socket_stays_usable(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Stockholm."]))
    frames = [
        {"type": "ping"},
        "not json",
        {"type": "message", "data": "   "},
        {"type": "shout", "data": "?"},
        b"\x00binary",
    ]
    async with running_app(make_settings()) as port, chat(port) as client:
        for n in range(FLOOD):
            frame = frames[n % len(frames)]
            await client.connection.send(
                frame if isinstance(frame, str | bytes) else json.dumps(frame)
            )
        replies = [await client.receive() for _ in range(FLOOD)]
        answer = await client.ask("Where is she based?")
    pongs = [r for r in replies if r["type"] == "pong"]
    codes = [r["data"]["code"] for r in replies if r["type"] == "error"]
    assert len(pongs) == FLOOD // len(frames)
    assert codes == ["invalid_message"] * (FLOOD - len(pongs))
    assert answer.final["data"]["content"] == "Stockholm."
