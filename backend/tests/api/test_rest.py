"""The visitor REST routes over a real server, sharing limits and storage with /ws."""

import uuid

import httpx

from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat, sse_events


async def test_ask_then_continue_the_conversation(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Stockholm."]), Reply(tokens=["Since ", "2019."]))
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{port}/api"
        first = await http.post(f"{base}/chat", json={"message": "Where is she based?"})
        session_id = first.json()["session_id"]
        second = await http.post(
            f"{base}/chat", json={"message": "Since when?", "session_id": session_id}
        )
        history = await http.get(f"{base}/sessions/{session_id}/messages")

    assert first.status_code == 200
    assert first.json()["answer"] == "Stockholm."
    assert first.json()["finish_reason"] == "stop"
    assert first.json()["source"] == "model"
    assert second.json() | {"usage": None} == {
        "session_id": session_id,
        "answer": "Since 2019.",
        "finish_reason": "stop",
        "usage": None,
        "model": "openai/gpt-4o-mini",
        "source": "model",
    }
    sent = [m["content"] for m in fake_llm.requests[-1].body["messages"][1:]]
    assert sent == ["Where is she based?", "Stockholm.", "Since when?"]
    assert [m["content"] for m in history.json()["messages"]] == [
        "Where is she based?",
        "Stockholm.",
        "Since when?",
        "Since 2019.",
    ]


async def test_streamed_answer_as_server_sent_events(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["One ", "two."]), Reply(tokens=["Three."]))
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        url = f"http://127.0.0.1:{port}/api/chat"
        by_flag = await http.post(url, json={"message": "Count?", "stream": True})
        by_header = await http.post(
            url, json={"message": "More?"}, headers={"Accept": "text/event-stream"}
        )

    assert by_flag.headers["content-type"].startswith("text/event-stream")
    assert by_flag.headers["x-accel-buffering"] == "no"
    events = sse_events(by_flag.text)
    names = [name for name, _ in events]
    assert names[0] == "session"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"chunk"}  # one per token, or fewer joined (pacing)
    assert "".join(data["data"] for name, data in events if name == "chunk") == "One two."
    assert events[-1][1]["data"]["content"] == "One two."
    assert sse_events(by_header.text)[-1][1]["data"]["content"] == "Three."


async def test_errors_use_one_schema_and_the_same_codes(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings(max_message_tokens=10, rate_limit_questions_per_ip="2/minute")
    async with running_app(settings) as port, httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{port}"
        unknown = await http.post(
            f"{base}/api/chat", json={"message": "Hi?", "session_id": str(uuid.uuid4())}
        )
        malformed = await http.post(f"{base}/api/chat", json={"question": "Hi?"})
        too_long = await http.post(f"{base}/api/chat", json={"message": "word " * 50})
        no_history = await http.get(f"{base}/api/sessions/{uuid.uuid4()}/messages")
        nowhere = await http.get(f"{base}/api/nothing-here")
        plain_ws = await http.get(f"{base}/ws")
        for _ in range(2):
            await http.post(f"{base}/api/chat", json={"message": "Hi?"})
        limited = await http.post(f"{base}/api/chat", json={"message": "Hi?"})

    expected = {
        unknown: (404, "session_not_found"),
        malformed: (422, "invalid_request"),
        too_long: (413, "message_too_long"),
        no_history: (404, "session_not_found"),
        nowhere: (404, "not_found"),
        plain_ws: (426, "upgrade_required"),
        limited: (429, "rate_limited"),
    }
    for response, (status, code) in expected.items():
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error"}
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]
    assert int(limited.headers["retry-after"]) > 0
    assert limited.json()["error"]["retry_after"] > 0


async def test_rest_and_websocket_share_one_rate_limit(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(rate_limit_questions_per_ip="2/minute")
    async with running_app(settings) as port, httpx.AsyncClient() as http:
        async with chat(port) as client:
            assert (await client.ask("Over the socket?")).final["type"] == "done"
        url = f"http://127.0.0.1:{port}/api/chat"
        assert (await http.post(url, json={"message": "Over REST?"})).status_code == 200
        assert (await http.post(url, json={"message": "Once more?"})).status_code == 429


async def test_profile_tells_a_widget_what_to_show(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings()) as port, httpx.AsyncClient() as http:
        profile = (await http.get(f"http://127.0.0.1:{port}/api/profile")).json()
    configured = make_settings(
        greeting="Hej!", starter_questions="Who is Maya?|What does she build, and why?"
    )
    async with running_app(configured) as port, httpx.AsyncClient() as http:
        custom = (await http.get(f"http://127.0.0.1:{port}/api/profile")).json()

    assert profile["name"] == "Maya Lindqvist"
    assert profile["headline"]
    assert "Maya Lindqvist" in profile["greeting"]
    assert "What has Maya worked on recently?" in profile["suggested_questions"]
    assert 1 <= len(profile["suggested_questions"]) <= 4
    assert profile["mode"] == "model"
    assert custom["greeting"] == "Hej!"
    assert custom["suggested_questions"] == ["Who is Maya?", "What does she build, and why?"]
