"""Pure pieces of leads, gaps and notifications: no server, no database."""

import json
from datetime import UTC, datetime

from app.chat.tools import Tool, ToolBox
from app.leads.digest import next_run
from app.leads.export import neutralise
from app.leads.notifications import lead_created
from app.leads.schemas import ContactArguments, LeadItem
from app.leads.service import gap_key
from app.llm.sse import StreamState
from app.llm.tool_calls import ToolCall, ToolCallBuffer
from app.notify.webhook import sign, verify


def test_gap_keys_ignore_case_spacing_and_punctuation() -> None:
    same = [
        "Does she speak German?",
        "does she  speak german",
        "DOES SHE SPEAK GERMAN!!",
        "Does she speak German ?",
    ]
    assert len({gap_key(question) for question in same}) == 1
    assert gap_key("Does she speak German?") != gap_key("Does she speak Greek?")
    assert gap_key("¿Habla alemán?") == gap_key("habla alemán")


def test_spreadsheet_formulas_are_neutralised() -> None:
    cells = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "plain", "a=b", ""]
    assert [neutralise(c) for c in cells] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "plain", "a=b", "",
    ]  # fmt: skip


def test_webhook_signature_covers_the_exact_body() -> None:
    body = b'{"event":"lead.created"}'
    header = sign("secret", body)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    assert verify("secret", body, header)
    assert not verify("secret", body + b" ", header)
    assert not verify("other", body, header)


def test_tool_calls_streamed_in_pieces_are_put_together() -> None:
    state = StreamState()
    pieces = [
        [{"index": 0, "id": "call_a", "function": {"name": "record_", "arguments": ""}}],
        [{"index": 0, "function": {"name": "contact", "arguments": '{"name": "Ja'}}],
        [{"index": 1, "id": "call_b", "function": {"name": "record_unanswered_question"}}],
        [{"index": 0, "function": {"arguments": 'ne", "email": "j@a.example"}'}}],
        [{"index": 1, "function": {"arguments": '{"question": "Q?"}'}}],
    ]  # fmt: skip
    for calls in pieces:
        chunk = {"choices": [{"delta": {"tool_calls": calls}, "finish_reason": None}]}
        assert state.add(json.dumps(chunk).encode()) == []
    state.add(b'{"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}')

    assert state.finish_reason == "tool_calls"
    assert state.tool_calls.calls() == (
        ToolCall("call_a", "record_contact", '{"name": "Jane", "email": "j@a.example"}'),
        ToolCall("call_b", "record_unanswered_question", '{"question": "Q?"}'),
    )


def test_a_name_and_id_repeated_in_every_piece_are_kept_once() -> None:
    buffer = ToolCallBuffer()
    for piece in ('{"question": ', '"Q?"', "}"):
        function = {"name": "record_unanswered_question", "arguments": piece}
        buffer.add([{"index": 0, "id": "call_a", "type": "function", "function": function}])
    assert buffer.calls() == (
        ToolCall("call_a", "record_unanswered_question", '{"question": "Q?"}'),
    )


def test_a_call_without_an_id_or_index_still_gets_one() -> None:
    buffer = ToolCallBuffer()
    buffer.add([{"function": {"name": "f", "arguments": "{}"}}])
    assert buffer.calls() == (ToolCall("call_0", "f", "{}"),)


async def test_the_toolbox_refuses_what_it_cannot_run() -> None:
    async def run(_conversation: object, arguments: ContactArguments) -> str:
        return f"kept {arguments.email}"

    tool = Tool("record_contact", "d", {"type": "object"}, ContactArguments, run)
    box = ToolBox([tool])
    ok = ToolCall("1", "record_contact", '{"name": "J", "email": "j@a.example", "extra": 1}')
    assert json.loads(await box.call(ok, None)) == {"ok": True, "result": "kept j@a.example"}  # type: ignore[arg-type]
    for call in (ToolCall("2", "nope", "{}"), ToolCall("3", "record_contact", "[")):
        assert json.loads(await box.call(call, None))["ok"] is False  # type: ignore[arg-type]
    assert box.definitions[0]["function"]["name"] == "record_contact"


def test_chat_text_cannot_mention_everyone_or_forge_links() -> None:
    lead = LeadItem(
        id="0b8e6a52-5d0f-4a8e-9b8e-0c6f1f3d2a11",
        session_id="5b1f4c3e-8d2a-4f6b-9c1d-2e3f4a5b6c7d",
        name="<!channel> @everyone", email="j@a.example", company=None,
        message="<https://evil.example|click>", source="form", created_at=datetime.now(UTC),
    )  # fmt: skip
    text = lead_created(lead, None).text
    assert "<!channel>" not in text
    assert "@everyone" not in text
    assert "<https://evil" not in text
    assert "&lt;https://evil.example|click&gt;" in text


def test_the_digest_runs_at_the_next_occurrence_of_its_hour() -> None:
    morning = datetime(2026, 5, 1, 6, 30, tzinfo=UTC)
    assert next_run(morning, 7) == datetime(2026, 5, 1, 7, tzinfo=UTC)
    assert next_run(morning, 6) == datetime(2026, 5, 2, 6, tzinfo=UTC)
