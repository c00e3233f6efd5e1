"""The chat over a real WebSocket against a running app and the loopback fake provider."""

import asyncio
import time
import uuid

from app.core.config import Settings
from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat


async def test_streamed_answer_uses_the_resume(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Maya ", "builds ", "backends."]))
    async with running_app(make_settings()) as port, chat(port) as client:
        assert client.session["data"]["resumed"] is False
        assert client.session["data"]["history"] == []
        answer = await client.ask("  What does she do?  ")

    # At most three chunks: the tokens that arrive together share one.
    assert answer.text == "Maya builds backends."
    assert answer.seqs[-1] <= 3
    assert answer.seqs == sorted(set(answer.seqs))
    done = answer.final
    assert done["type"] == "done"
    assert done["data"]["content"] == "Maya builds backends."
    assert done["data"]["finish_reason"] == "stop"
    usage = done["data"]["usage"]
    assert usage["completion_tokens"] == 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + 3

    request = fake_llm.requests[-1]
    system, question = request.body["messages"][0], request.body["messages"][-1]
    assert system["role"] == "system"
    assert "Maya Lindqvist" in system["content"]
    assert "## Languages" in system["content"]
    assert question == {"role": "user", "content": "What does she do?"}
    assert request.body["stream"] is True
    assert request.headers["authorization"] == "Bearer sk-test-secret-key"
    assert request.headers["x-title"] == "Resume Chatbot"
    assert "http-referer" in request.headers


async def test_tokens_streamed_within_the_chunk_interval_go_out_as_one_frame(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    """The first token goes at once; the rest, streamed within `STREAM_CHUNK_INTERVAL` of
    it, wait and go out together when the answer ends, which ends the wait."""
    tokens = [f"w{i} " for i in range(10)]
    fake_llm.script(Reply(tokens=tokens, token_delay=0.01))
    settings = make_settings(stream_chunk_interval=1.0)
    async with running_app(settings) as port, chat(port) as client:
        asked = time.perf_counter()
        await client.send({"type": "message", "data": "Tell me about her."})
        first = await client.receive()
        first_at = time.perf_counter()
        answer = await client.collect()
        done_at = time.perf_counter()

    assert (first["data"], first["seq"]) == ("w0 ", 1)
    assert first_at - asked < 0.8  # not held for the interval
    assert answer.chunks == ["".join(tokens[1:])]
    assert done_at - first_at < 0.8  # the end of the answer cut the interval short
    assert answer.final["data"]["content"] == "".join(tokens)


async def test_with_no_chunk_interval_each_token_is_a_frame(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    tokens = [f"w{i} " for i in range(10)]
    # 20 ms apart: paced by the default 50 ms, they would come in about four frames.
    fake_llm.script(Reply(tokens=tokens, token_delay=0.02))
    async with running_app(make_settings(stream_chunk_interval=0)) as port, chat(port) as client:
        answer = await client.ask("Tell me about her.")

    # One frame per chunk as it streams (the leak guard may hold a short tail back to the
    # next token: a frame of two then).
    assert len(answer.chunks) >= 8
    assert answer.text == "".join(tokens)
    assert answer.seqs[-1] == 10


async def test_resumed_session_shows_history_and_the_model_sees_it(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Stockholm."]), Reply(tokens=["Since 2019."]))
    async with running_app(make_settings()) as port:
        async with chat(port) as first:
            await first.ask("Where is she based?")
        async with chat(port, first.session_id) as again:
            session = again.session["data"]
            assert session["resumed"] is True
            assert session["session_id"] == first.session_id
            assert [(m["role"], m["content"]) for m in session["history"]] == [
                ("user", "Where is she based?"),
                ("assistant", "Stockholm."),
            ]
            answer = await again.ask("Since when?")

    assert answer.text == "Since 2019."
    sent = [(m["role"], m["content"]) for m in fake_llm.requests[-1].body["messages"][1:]]
    assert sent == [
        ("user", "Where is she based?"),
        ("assistant", "Stockholm."),
        ("user", "Since when?"),
    ]


async def test_restarting_the_server_loses_nothing(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings()
    async with running_app(settings) as port, chat(port) as client:
        await client.ask("Hello?")
        session_id = client.session_id
    async with running_app(settings) as port, chat(port, session_id) as client:
        history = client.session["data"]["history"]
    assert [m["content"] for m in history] == ["Hello?", "Hello, world."]


async def test_unknown_or_malformed_session_id_starts_a_fresh_session(
    make_settings: SettingsFactory,
) -> None:
    async with running_app(make_settings()) as port:
        for wanted in ("not-a-uuid", str(uuid.uuid4())):
            async with chat(port, wanted) as client:
                assert [f["data"]["code"] for f in client.before] == ["session_not_found"]
                assert client.session["data"]["resumed"] is False
                assert client.session_id != wanted
                answer = await client.ask("Still there?")
                assert answer.final["type"] == "done"


async def test_bad_frames_get_invalid_message_and_the_socket_stays_usable(
    make_settings: SettingsFactory,
) -> None:
    bad_frames: list[str | bytes] = [
        "not json",
        '{"type": "dance"}',
        '{"type": "message", "data": 42}',
        '{"type": "message"}',
        '["message", "hi"]',
        '{"type": "message", "data": "   "}',
        '{"type": "message", "data": "\\u200b\\ufeff\\u2060"}',  # zero-width, BOM: blank
        b"\x00binary",
    ]
    async with running_app(make_settings()) as port, chat(port) as client:
        for frame in bad_frames:
            await client.send(frame)
            reply = await client.receive()
            assert reply["type"] == "error", frame
            assert reply["data"]["code"] == "invalid_message", frame
            assert reply["data"]["message"].endswith("."), frame
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong", "data": None}
        answer = await client.ask("A real question?")
    assert answer.final["type"] == "done"


async def test_too_long_question_is_refused_and_not_stored(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    async with running_app(make_settings(max_message_chars=50)) as port:
        async with chat(port) as client:
            answer = await client.ask("x" * 51)
            assert answer.final["data"]["code"] == "message_too_long"
            assert "50" in answer.final["data"]["message"]
            assert (await client.ask("Short one?")).final["type"] == "done"
        async with chat(port, client.session_id) as again:
            history = again.session["data"]["history"]
    assert [m["content"] for m in history] == ["Short one?", "Hello, world."]
    assert len(fake_llm.requests) == 1


async def test_a_second_question_while_streaming_is_busy(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["one ", "two ", "three"], token_delay=0.1))
    async with running_app(make_settings()) as port, chat(port) as client:
        await client.send({"type": "message", "data": "First?"})
        await client.send({"type": "message", "data": "Second?"})
        frames = [await client.receive()]
        while frames[-1]["type"] != "done":
            frames.append(await client.receive())
    errors = [f["data"]["code"] for f in frames if f["type"] == "error"]
    assert errors == ["busy"]
    assert frames[-1]["data"]["content"] == "one two three"
    assert len(fake_llm.requests) == 1


async def test_cancel_stops_the_provider_and_keeps_the_partial_answer(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=[f"t{i} " for i in range(50)], token_delay=0.05))
    async with running_app(make_settings()) as port:
        async with chat(port) as client:
            await client.send({"type": "message", "data": "Tell me everything."})
            first = await client.receive()
            assert first["type"] == "chunk"
            await client.send({"type": "cancel"})
            rest = await client.collect()
            done = rest.final
            assert done["type"] == "done"
            assert done["data"]["finish_reason"] == "cancelled"
            partial = done["data"]["content"]
            assert partial == first["data"] + rest.text
            assert 0 < len(partial.split()) < 50
            await fake_llm.wait_idle()
            assert fake_llm.cancelled_streams == 1
            assert (await client.ask("Next?")).final["type"] == "done"
        async with chat(port, client.session_id) as again:
            history = again.session["data"]["history"]
    assert [m["content"] for m in history] == [
        "Tell me everything.",
        partial,
        "Next?",
        "Hello, world.",
    ]


async def test_cancel_with_nothing_in_flight_is_ignored(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings()) as port, chat(port) as client:
        await client.send({"type": "cancel"})
        await client.send({"type": "ping"})
        assert (await client.receive())["type"] == "pong"


async def test_disconnecting_mid_answer_loses_nothing(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    tokens = [f"w{i} " for i in range(10)]
    fake_llm.script(Reply(tokens=tokens, token_delay=0.05))
    async with running_app(make_settings()) as port:
        async with chat(port) as client:
            await client.send({"type": "message", "data": "Long answer please."})
            assert (await client.receive())["type"] == "chunk"
        history = await _history_when_answered(port, client.session_id)
    assert history[-1] == {"role": "assistant", "content": "".join(tokens)}
    assert fake_llm.cancelled_streams == 0


async def _history_when_answered(port: int, session_id: str) -> list[dict[str, str]]:
    for _ in range(100):
        async with chat(port, session_id) as client:
            history = [
                {"role": m["role"], "content": m["content"]}
                for m in client.session["data"]["history"]
            ]
        if history and history[-1]["role"] == "assistant":
            return history
        await asyncio.sleep(0.05)
    raise AssertionError("the answer was never stored")


async def test_server_shutdown_lets_the_answer_in_flight_finish(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings: Settings = make_settings()
    tokens = [f"s{i} " for i in range(6)]
    fake_llm.script(Reply(tokens=tokens, token_delay=0.1))
    async with running_app(settings) as port, chat(port) as client:
        await client.send({"type": "message", "data": "Answer slowly."})
        assert (await client.receive())["type"] == "chunk"
        session_id = client.session_id
    # The server has stopped; a new one on the same database finds the whole answer.
    async with running_app(settings) as port, chat(port, session_id) as client:
        history = client.session["data"]["history"]
    assert history[-1]["content"] == "".join(tokens)


async def test_cancel_sent_right_after_the_question_is_honoured(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=[f"t{i} " for i in range(20)], token_delay=0.05))
    async with running_app(make_settings()) as port, chat(port) as client:
        await client.send({"type": "message", "data": "Quick, then stop."})
        await client.send({"type": "cancel"})
        answer = await client.collect()
    assert answer.final["type"] == "done"
    assert answer.final["data"]["finish_reason"] == "cancelled"
    assert len(answer.final["data"]["content"].split()) < 20
