"""The model's tools end to end: streamed tool calls from the stand-in provider, run by the
service, their results sent back and the follow-up streamed as the one answer."""

import json
from typing import Any

import httpx
import pytest

from devtools.fake_llm import Call, FakeLLM, Reply, prompt_tokens
from tests.api.test_admin import AUTH, TOKEN, admin_http
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat, sse_events
from tests.support.webhook_receiver import webhook_receiver

JANE = {"name": "Jane Doe", "email": "jane@acme.example", "company": "Acme", "message": "A role"}
QUESTION = "I'm Jane Doe from Acme, please have Maya reach me at jane@acme.example"
THANKS = ["Thanks, Jane! ", "Maya will ", "be in touch."]


def tool_turn(*calls: Call, before: list[str] | None = None) -> list[Reply]:
    """A reply that calls tools (after `before` text, if any), then the follow-up."""
    return [Reply(tokens=before or [], tool_calls=list(calls)), Reply(tokens=THANKS)]


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]


async def test_a_lead_given_to_the_model_over_the_socket(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(*tool_turn(Call("record_contact", JANE, pieces=5)))
    secret = "whsec-test"
    async with webhook_receiver() as hook:
        settings = make_settings(
            admin_token=TOKEN, notify_webhook_url=hook.url, notify_webhook_secret=secret
        )
        async with running_app(settings) as port:
            async with chat(port) as client:
                answer = await client.ask(QUESTION)
            await hook.wait_for(1)
            async with admin_http(port) as admin:
                leads = (await admin.get("/leads")).json()
                stored = (await admin.get(f"/conversations/{client.session_id}")).json()
                listed = (await admin.get("/conversations", params={"has_lead": "true"})).json()
                without = (await admin.get("/conversations", params={"has_lead": "false"})).json()

    assert answer.text == "".join(THANKS)  # no tool JSON, no first-round text
    done = answer.final["data"]
    assert done["content"] == "".join(THANKS)
    assert done["finish_reason"] == "stop"
    first, second = fake_llm.requests
    assert [t["function"]["name"] for t in first.body["tools"]] == [
        "record_contact",
        "record_unanswered_question",
    ]
    assert first.body["tool_choice"] == "auto"
    assert "record_contact" in first.body["messages"][0]["content"]  # the prompt says when
    called = second.body["messages"][-2]
    assert called["role"] == "assistant"
    assert json.loads(called["tool_calls"][0]["function"]["arguments"]) == JANE
    [result] = tool_messages(second.body)
    assert result["ok"] is True
    assert result["result"].startswith("Recorded.")
    # Both rounds' tokens: the stand-in reports 1 + 5 completion tokens (5 argument pieces)
    # and then 3, and each round's prompt.
    assert done["usage"]["completion_tokens"] == 5 + 3
    assert done["usage"]["prompt_tokens"] == prompt_tokens(first.body) + prompt_tokens(second.body)
    assert stored["tokens_used"] == done["usage"]["total_tokens"]  # what the budgets count

    [lead] = leads["items"]
    assert lead | {"id": None, "created_at": None} == {
        "id": None,
        "session_id": client.session_id,
        "source": "model",
        "created_at": None,
        **JANE,
    }
    assert [(c["id"], c["lead_count"]) for c in listed["items"]] == [(client.session_id, 1)]
    assert without["items"] == []

    [delivery] = hook.received
    assert delivery.signed_with(secret)
    body = delivery.json
    assert body["event"] == "lead.created"
    assert body["lead"] == lead
    assert body["conversation_url"] == f"/api/admin/conversations/{client.session_id}"
    assert "Jane Doe" in body["text"]
    assert "jane@acme.example" in body["text"]
    assert delivery.headers["x-resume-chat-timestamp"] == str(body["sent_at"])


@pytest.mark.parametrize("stream", [False, True])
async def test_a_lead_given_to_the_model_over_rest(
    make_settings: SettingsFactory, fake_llm: FakeLLM, stream: bool
) -> None:
    fake_llm.script(*tool_turn(Call("record_contact", JANE), before=["One moment."]))
    async with running_app(make_settings(admin_token=TOKEN)) as port, httpx.AsyncClient() as http:
        response = await http.post(
            f"http://127.0.0.1:{port}/api/chat", json={"message": QUESTION, "stream": stream}
        )
        leads = (await http.get(f"http://127.0.0.1:{port}/api/admin/leads", headers=AUTH)).json()

    expected = "One moment.\n\n" + "".join(THANKS)  # both rounds' text, apart
    if stream:
        events = sse_events(response.text)
        names = [name for name, _ in events]  # chunks that came together are one event
        assert names[0] == "session"
        assert names[-1] == "done"
        assert set(names[1:-1]) == {"chunk"}
        assert "".join(data["data"] for name, data in events if name == "chunk") == expected
        assert events[-1][1]["data"]["content"] == expected
        assert "record_contact" not in response.text
    else:
        assert response.json()["answer"] == expected
    assert [lead["source"] for lead in leads["items"]] == ["model"]
    assert fake_llm.requests[1].body["messages"][-2]["content"] == "One moment."


async def test_a_tool_rounds_tokens_count_when_the_follow_up_fails(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        Reply(tokens=[], tool_calls=[Call("record_contact", JANE, pieces=4)]),
        *[Reply(status=503)] * 3,  # the follow-up fails, retries included: excerpts answer
    )
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        async with chat(port) as client:
            answer = await client.ask(QUESTION)
        async with admin_http(port) as admin:
            leads = (await admin.get("/leads")).json()
            stored = (await admin.get(f"/conversations/{client.session_id}")).json()

    assert answer.final["data"]["source"] == "resume_excerpt"
    usage = answer.final["data"]["usage"]
    spent = prompt_tokens(fake_llm.requests[0].body)
    # The tool round's tokens (the stand-in counts one per argument piece), spent all the same.
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (spent, 4)
    assert stored["tokens_used"] == spent + 4
    assert [lead["email"] for lead in leads["items"]] == [JANE["email"]]


async def test_a_tool_rounds_tokens_count_when_the_visitor_stops_the_follow_up(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        Reply(tokens=[], tool_calls=[Call("record_contact", JANE, pieces=4)]),
        Reply(tokens=[f"w{i} " for i in range(50)], token_delay=0.05),
    )
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        async with chat(port) as client:
            await client.send({"type": "message", "data": QUESTION})
            assert (await client.receive())["type"] == "chunk"
            await client.send({"type": "cancel"})
            done = (await client.collect()).final
        async with admin_http(port) as admin:
            stored = (await admin.get(f"/conversations/{client.session_id}")).json()

    assert done["data"]["finish_reason"] == "cancelled"
    usage = done["data"]["usage"]
    # The follow-up is our estimate (about one prompt); the tool round is the provider's count.
    assert usage["prompt_tokens"] > 1.5 * prompt_tokens(fake_llm.requests[0].body)
    assert usage["completion_tokens"] > 4
    assert stored["tokens_used"] == usage["total_tokens"]


async def test_bad_tool_calls_get_errors_and_the_answer_goes_on(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        *tool_turn(
            Call("record_contact", {"name": "Jane", "email": "jane(at)acme"}),
            Call("record_contact", '{"name": "Jane", "email": '),
            Call("delete_everything", {}),
        )
    )
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        async with chat(port) as client:
            answer = await client.ask("Reach me at jane(at)acme")
        async with admin_http(port) as admin:
            leads = (await admin.get("/leads")).json()

    assert answer.final["type"] == "done"
    assert answer.text == "".join(THANKS)
    invalid, broken, unknown = tool_messages(fake_llm.requests[1].body)
    assert invalid["ok"] is False
    assert "email" in invalid["error"]
    assert broken["ok"] is False
    assert "Invalid arguments" in broken["error"]
    assert unknown == {"ok": False, "error": "There is no tool named 'delete_everything'."}
    assert leads["items"] == []


async def test_at_most_two_tool_rounds_then_the_model_must_answer(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    ask_again = Call("record_unanswered_question", {"question": "Is she on call?"})
    fake_llm.script(
        Reply(tokens=[], tool_calls=[ask_again]),
        Reply(tokens=[], tool_calls=[ask_again]),
        Reply(tokens=["I don't know."]),
    )
    async with running_app(make_settings()) as port, chat(port) as client:
        answer = await client.ask("Is she on call?")

    assert answer.text == "I don't know."
    assert [r.body["tool_choice"] for r in fake_llm.requests] == ["auto", "auto", "none"]
    assert len(tool_messages(fake_llm.requests[2].body)) == 2


async def test_a_model_that_refuses_tools_is_asked_without_them_from_then_on(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    refusal = "No endpoints found that support tool use."
    fake_llm.script(
        Reply(status=404, error_message=refusal),
        Reply(tokens=["First."]),
        Reply(tokens=["Second."]),
    )
    async with running_app(make_settings()) as port, chat(port) as client:
        first = await client.ask("Hello?")
        second = await client.ask("Again?")

    assert (first.text, second.text) == ("First.", "Second.")
    assert ["tools" in r.body for r in fake_llm.requests] == [True, False, False]


async def test_llm_tools_off_offers_none(make_settings: SettingsFactory, fake_llm: FakeLLM) -> None:
    async with running_app(make_settings(llm_tools="off")) as port, chat(port) as client:
        await client.ask("Hello?")

    [request] = fake_llm.requests
    assert "tools" not in request.body
    assert "record_contact" not in request.body["messages"][0]["content"]
