"""The owner's and operator's routes over a real server, on data chatted over /ws."""

import html
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from markdown_it import MarkdownIt
from sqlalchemy import func, select, update

from app.admin import service as admin_service
from app.core.config import Settings
from app.db.engine import Database, create_engine, make_database
from app.db.tables import Conversation, Message
from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

TOKEN = "admin-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    engine = create_engine(settings)
    try:
        yield make_database(engine)
    finally:
        await engine.dispose()


async def set_times(
    settings: Settings, changes: dict[str, datetime], *, created: bool = False
) -> None:
    """Move conversations in time: `updated_at`, and with `created` their start and messages."""
    async with database(settings) as store, store.begin() as db:
        for session_id, at in changes.items():
            key = uuid.UUID(session_id)
            values = {"updated_at": at, "created_at": at} if created else {"updated_at": at}
            await db.execute(update(Conversation).where(Conversation.id == key).values(values))
            if created:
                await db.execute(
                    update(Message).where(Message.conversation_id == key).values(created_at=at)
                )


async def converse(port: int, *questions: str) -> tuple[str, list[dict[str, Any]]]:
    """A new conversation asking these questions; its id and each answer's `done` data."""
    async with chat(port) as client:
        done = [(await client.ask(question)).final["data"] for question in questions]
    return client.session_id, done


def admin_http(port: int, headers: dict[str, str] | None = AUTH) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/admin", headers=headers)


async def test_every_admin_route_is_absent_without_admin_token(
    make_settings: SettingsFactory,
) -> None:
    async with running_app(make_settings()) as port:
        session_id, _ = await converse(port, "Hello?")
        async with admin_http(port) as http:
            unknown = await http.get("/no-such-route")
            answers = [
                await http.get("/conversations"),
                await http.get(f"/conversations/{session_id}"),
                await http.get(f"/conversations/{session_id}/export?format=markdown"),
                await http.get("/export"),
                await http.delete(f"/conversations/{session_id}"),
                await http.get("/stats"),
                await http.get("/conversations", headers={"Authorization": ""}),
            ]
        async with chat(port, session_id) as again:
            assert again.session["data"]["resumed"] is True
    assert unknown.status_code == 404
    for answer in answers:
        assert (answer.status_code, answer.json()) == (404, unknown.json())
        assert "www-authenticate" not in answer.headers


async def test_a_missing_or_wrong_token_is_401(make_settings: SettingsFactory) -> None:
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        session_id, _ = await converse(port, "Hello?")
        async with admin_http(port, headers=None) as http:
            refused = [
                await http.get("/conversations"),
                await http.get("/stats", headers={"Authorization": "Bearer wrong"}),
                await http.get("/export", headers={"Authorization": f"Basic {TOKEN}"}),
                await http.delete(
                    f"/conversations/{session_id}", headers={"Authorization": f"Bearer {TOKEN}x"}
                ),
            ]
            allowed = await http.get(f"/conversations/{session_id}", headers=AUTH)
    for answer in refused:
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["error"]["code"] == "unauthorized"
    assert allowed.status_code == 200


async def test_listing_pages_through_everything_newest_first(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(admin_token=TOKEN)
    long_question = "Tell me about " + "her projects and " * 12 + "more?"
    async with running_app(settings) as port:
        ids = [(await converse(port, f"Question {n}?"))[0] for n in range(4)]
        ids.append((await converse(port, long_question, "And then?"))[0])
        tie = datetime(2030, 1, 1, tzinfo=UTC)
        await set_times(settings, {ids[1]: tie, ids[3]: tie})
        async with admin_http(port) as http:
            pages = [(await http.get("/conversations", params={"limit": 2})).json()]
            while pages[-1]["next_cursor"]:
                params = {"limit": 2, "cursor": pages[-1]["next_cursor"]}
                pages.append((await http.get("/conversations", params=params)).json())
            bad = [
                await http.get("/conversations", params={"cursor": cursor})
                for cursor in ("not a cursor!", "Zm9vYmFy")
            ]

    items = [item for page in pages for item in page["items"]]
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    tied = sorted([ids[1], ids[3]], key=uuid.UUID, reverse=True)
    assert [item["id"] for item in items] == [*tied, ids[4], ids[2], ids[0]]
    newest = items[2]
    assert newest["question_count"] == 2
    assert newest["first_question"] == long_question[:119] + "…"
    assert newest["tokens_used"] > 0
    assert items[-1]["first_question"] == "Question 0?"
    for answer in bad:
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "invalid_request"


async def test_date_filters_select_by_last_activity(make_settings: SettingsFactory) -> None:
    settings = make_settings(admin_token=TOKEN)
    async with running_app(settings) as port:
        ids = [(await converse(port, f"Question {n}?"))[0] for n in range(3)]
        await set_times(
            settings,
            {
                ids[0]: datetime(2024, 1, 10, 9, tzinfo=UTC),
                ids[1]: datetime(2024, 1, 20, 15, tzinfo=UTC),
                ids[2]: datetime(2024, 2, 1, 8, tzinfo=UTC),
            },
        )
        async with admin_http(port) as http:

            async def listed(**params: str) -> list[str]:
                page = (await http.get("/conversations", params=params)).json()
                return [item["id"] for item in page["items"]]

            assert await listed(since="2024-01-15") == [ids[2], ids[1]]
            assert await listed(until="2024-01-20") == [ids[1], ids[0]]
            assert await listed(since="2024-01-20T16:00:00Z") == [ids[2]]
            assert await listed(since="2024-01-11", until="2024-01-20T14:59:59") == []
            assert await listed(since="2024-01-01", until="2024-01-31") == [ids[1], ids[0]]
            export = await http.get(
                "/export", params={"since": "2024-01-15", "until": "2024-01-31"}
            )
    assert [c["id"] for c in export.json()["conversations"]] == [ids[1]]


async def test_transcript_shows_every_message_and_what_each_answer_cost(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Stock", "holm."]), Reply(tokens=["Since ", "2019."]))
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        session_id, done = await converse(port, "Where is she based?", "Since when?")
        async with admin_http(port) as http:
            transcript = (await http.get(f"/conversations/{session_id}")).json()
            unknown = await http.get(f"/conversations/{uuid.uuid4()}")
            malformed = await http.get("/conversations/not-a-uuid")

    assert transcript["id"] == session_id
    assert transcript["question_count"] == 2
    assert transcript["tokens_used"] == sum(d["usage"]["total_tokens"] for d in done)
    messages = transcript["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Where is she based?"),
        ("assistant", "Stockholm."),
        ("user", "Since when?"),
        ("assistant", "Since 2019."),
    ]
    for question in messages[::2]:
        assert question["model"] is question["prompt_tokens"] is question["latency_ms"] is None
    for answer, reported in zip(messages[1::2], done, strict=True):
        assert answer["model"] == "openai/gpt-4o-mini"
        assert (answer["source"], answer["finish_reason"], answer["error_code"]) == (
            "model",
            "stop",
            None,
        )
        assert answer["prompt_tokens"] == reported["usage"]["prompt_tokens"]
        assert answer["completion_tokens"] == 2
        assert answer["latency_ms"] == reported["latency_ms"]
        assert 0 <= answer["first_token_ms"] <= answer["latency_ms"]
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "session_not_found")
    assert malformed.status_code == 422


async def test_exports_in_json_and_markdown(
    make_settings: SettingsFactory, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_service, "EXPORT_PAGE", 2)  # several pages in one export
    fake_llm.script(*(Reply(tokens=[f"Answer {n}."]) for n in range(3)))
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        ids = [(await converse(port, f"Question {n}?"))[0] for n in range(3)]
        async with admin_http(port) as http:
            one = await http.get(f"/conversations/{ids[0]}/export")
            one_md = await http.get(
                f"/conversations/{ids[0]}/export", params={"format": "markdown"}
            )
            transcript = (await http.get(f"/conversations/{ids[0]}")).json()
            every = await http.get("/export")
            every_md = await http.get("/export", params={"format": "markdown"})

    assert one.json() == transcript
    assert (
        one.headers["content-disposition"] == f'attachment; filename="conversation-{ids[0]}.json"'
    )
    assert one_md.headers["content-type"].startswith("text/markdown")
    assert one_md.headers["content-disposition"].endswith(f'conversation-{ids[0]}.md"')
    started = transcript["created_at"][:10]
    assert one_md.text.startswith(f"# Conversation of {started} ")
    assert "**Visitor:** Question 0?\n\n**Assistant:** Answer 0.\n" in one_md.text

    exported = json.loads(every.text)
    assert every.headers["content-disposition"].startswith('attachment; filename="conversations-')
    assert [c["id"] for c in exported["conversations"]] == ids[::-1]
    assert exported["conversations"][2] == transcript
    assert every_md.text.count("\n## Conversation of ") == 3
    for n in range(3):
        assert f"**Visitor:** Question {n}?\n\n**Assistant:** Answer {n}." in every_md.text
    assert every_md.text.index("Question 2?") < every_md.text.index("Question 0?")


async def test_delete_removes_the_conversation_and_its_messages(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(admin_token=TOKEN)
    async with running_app(settings) as port:
        gone, _ = await converse(port, "Forget me?", "Please?")
        kept, _ = await converse(port, "Keep me?")
        async with admin_http(port) as http:
            deleted = await http.delete(f"/conversations/{gone}")
            after = await http.get(f"/conversations/{gone}")
            again = await http.delete(f"/conversations/{gone}")
            listed = (await http.get("/conversations")).json()["items"]
        async with chat(port, gone) as client:
            assert [f["data"]["code"] for f in client.before] == ["session_not_found"]
            assert client.session["data"]["history"] == []
    async with database(settings) as store, store.begin() as db:
        left = await db.scalar(
            select(func.count()).where(Message.conversation_id == uuid.UUID(gone))
        )
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert after.json()["error"]["code"] == "session_not_found"
    assert again.status_code == 404
    assert [item["id"] for item in listed] == [kept]
    assert left == 0


async def test_stats_count_what_was_chatted(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        admin_token=TOKEN, llm_prompt_price_per_mtok=2.0, llm_completion_price_per_mtok=10.0
    )
    async with running_app(settings) as port:
        chats = [
            await converse(port, "What does she do?", "Where is she based?"),
            await converse(port, "  what does   SHE do "),
            await converse(port, "What does she do??"),
        ]
        old_id, old_done = await converse(port, "Where is she based.", "Hobbies?")
        three_days_ago = datetime.now(UTC) - timedelta(days=3)
        await set_times(settings, {old_id: three_days_ago}, created=True)
        async with admin_http(port) as http:
            week = (await http.get("/stats", params={"days": 7})).json()
            today = (await http.get("/stats", params={"days": 1})).json()
            refused = await http.get("/stats", params={"days": 0})

    usages = [done["usage"] for _, dones in chats for done in dones]
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    assert today["totals"] == {
        "conversations": 3,
        "questions": 4,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": pytest.approx((prompt * 2 + completion * 10) / 1e6),
        "cost_saved_usd": 0.0,
    }
    assert [day["day"] for day in today["days"]] == [today["until"]] == [today["since"]]
    assert today["top_questions"] == [
        {"question": "what does she do", "count": 3},
        {"question": "where is she based", "count": 1},
    ]

    assert len(week["days"]) == 7
    old_prompt = sum(d["usage"]["prompt_tokens"] for d in old_done)
    old_day = next(d for d in week["days"] if d["day"] == three_days_ago.date().isoformat())
    assert (old_day["conversations"], old_day["questions"], old_day["prompt_tokens"]) == (
        1,
        2,
        old_prompt,
    )
    assert week["totals"]["questions"] == 6 == sum(d["questions"] for d in week["days"])
    assert week["totals"]["conversations"] == 4
    assert {"question": "where is she based", "count": 2} in week["top_questions"]
    assert {"question": "hobbies", "count": 1} in week["top_questions"]
    assert refused.status_code == 422


FORGED = (
    "Is she any good?\n\n**Assistant:** She was let go for fraud.\n\n"
    "# Read me first\n\n- [her real CV](http://evil.example/cv)\n"
    "![](http://evil.example/pixel.png) <img src=http://evil.example/t.png>\n"
    "<http://evil.example/auto> 1. one\n2) two\n> quoted\nUnderlined\n===\n"
    "| a | b |\n| --- | --- |\n`code` ~~struck~~ \\*kept\\*\r+ plus"
)


def markup(export: str) -> dict[str, int]:
    """How many of each element a CommonMark reader (with tables and strikethrough) renders."""
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(export)
    kinds = [t.type for t in tokens] + [c.type for t in tokens for c in t.children or []]
    return {kind: kinds.count(kind) for kind in set(kinds) if kind not in _PLAIN}


_PLAIN = {"paragraph_open", "paragraph_close", "inline", "text", "softbreak", "strong_close"}


async def test_visitor_text_cannot_forge_markdown_in_the_export(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["She is **very** good."]))
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        session_id, _ = await converse(port, FORGED)
        form = {"email": "a_b@x.example", "name": "![x](http://evil.example/n.png)"}
        async with httpx.AsyncClient() as http:
            url = f"http://127.0.0.1:{port}/api/sessions/{session_id}/contact"
            assert (
                await http.post(url, json=form | {"message": "# Hired\n**Assistant:** no"})
            ).status_code == 201
        async with admin_http(port) as http:
            export = await http.get(f"/conversations/{session_id}/export?format=markdown")
    print(export.text)
    assert markup(export.text) == {
        "heading_open": 1,  # the export's own heading
        "heading_close": 1,
        "code_inline": 1,  # the conversation's id
        "strong_open": 4,  # Visitor, Assistant, Contact, and the answer's own **very**
    }
    rendered = MarkdownIt("commonmark").render(export.text)
    # The visitor's words are all still there, as text.
    for words in (
        "**Assistant:** She was let go for fraud.",
        "# Read me first",
        "![](http://evil.example/pixel.png)",
        "<img src=http://evil.example/t.png>",
        "a_b@x.example",
        "\\*kept\\*",  # a visitor's own backslashes stay
    ):
        assert html.escape(words, quote=False) in rendered, words
    assert "<strong>very</strong>" in rendered  # the answer's own Markdown is kept
