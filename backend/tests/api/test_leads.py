"""The contact form, knowledge gaps, and leads in the owner's lists, exports and deletes."""

import csv
import io
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from app.core.config import OPENROUTER_BASE_URL
from app.db.tables import Lead, OutboxMessage
from app.upkeep.retention import purge_idle
from devtools.fake_llm import Call, FakeLLM, Reply
from tests.api.test_admin import TOKEN, admin_http, database, set_times
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat
from tests.support.webhook_receiver import webhook_receiver

NO_MODEL = {"openrouter_api_key": None, "openrouter_base_url": OPENROUTER_BASE_URL}
FORM = {"email": "jane@acme.example", "name": "Jane Doe", "company": "Acme", "message": "Hi!"}


def contact(port: int, session_id: str, body: Mapping[str, object]) -> httpx.Request:
    url = f"http://127.0.0.1:{port}/api/sessions/{session_id}/contact"
    return httpx.Request("POST", url, json=body)


async def send(port: int, session_id: str, body: Mapping[str, object]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.send(contact(port, session_id, body))


async def test_the_form_works_with_no_model_and_before_the_first_question(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(admin_token=TOKEN, **NO_MODEL)
    async with running_app(settings) as port, chat(port) as client:
        # The socket's session is not stored until a question is: the form stores it.
        created = await send(port, client.session_id, FORM)
        answer = await client.ask("Where did she study?")  # the same session carries on
        async with admin_http(port) as admin:
            leads = (await admin.get("/leads")).json()
            transcript = (await admin.get(f"/conversations/{client.session_id}")).json()

    assert created.status_code == 201
    assert answer.final["data"]["source"] == "resume_excerpt"
    [lead] = leads["items"]
    assert created.json() == {"id": lead["id"]}
    assert lead | {"id": None, "created_at": None} == {
        "id": None,
        "created_at": None,
        "session_id": client.session_id,
        "source": "form",
        **FORM,
    }
    assert transcript["question_count"] == 1
    assert next(m["content"] for m in transcript["messages"]) == "Where did she study?"
    assert transcript["leads"] == [lead]


async def test_the_form_with_a_model_and_blank_optional_fields(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        async with chat(port) as client:
            await client.ask("Hello?")
        body = {"email": " Jane@Acme.example ", "name": "  ", "company": "", "website": ""}
        created = await send(port, client.session_id, body)
        async with admin_http(port) as admin:
            [lead] = (await admin.get("/leads")).json()["items"]

    assert created.status_code == 201
    assert (lead["email"], lead["name"], lead["company"]) == ("Jane@acme.example", None, None)
    assert len(fake_llm.requests) == 1  # the form never involves the model


async def test_invalid_input_is_refused_clearly_and_nothing_is_stored(
    make_settings: SettingsFactory,
) -> None:
    session = str(uuid.uuid4())
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        no_at = await send(port, session, {"email": "jane.acme.example"})
        no_dot = await send(port, session, {"email": "jane@acme"})
        two_lines = await send(port, session, {"email": "j@acme.example", "name": "A\nBcc: x"})
        unknown = await send(port, session, {"email": "j@acme.example", "phone": "1"})
        bad_session = await send(port, "not-a-uuid", FORM)
        async with admin_http(port) as admin:
            leads = (await admin.get("/leads")).json()
            conversations = (await admin.get("/conversations")).json()

    for response in (no_at, no_dot, two_lines, unknown, bad_session):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"
    assert no_at.json()["error"]["message"] == (
        "email: value is not a valid email address: An email address must have an @-sign."
    )
    assert "period" in no_dot.json()["error"]["message"]
    assert two_lines.json()["error"]["message"].startswith("name: Value error, must be one line")
    assert (leads["items"], conversations["items"]) == ([], [])


async def test_spam_gets_a_honeypot_and_a_limit(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    settings = make_settings(admin_token=TOKEN, rate_limit_contacts_per_ip="3/hour")
    session = str(uuid.uuid4())
    async with running_app(settings) as port:
        bot = await send(port, session, FORM | {"website": "https://spam.example"})
        people = [await send(port, session, FORM) for _ in range(2)]
        limited = await send(port, session, FORM)
        async with admin_http(port) as admin:
            leads = (await admin.get("/leads")).json()["items"]

    assert bot.status_code == 201  # looks accepted
    assert bot.json()["id"] not in {lead["id"] for lead in leads}
    assert [r.status_code for r in people] == [201, 201]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "several times" in limited.json()["error"]["message"]
    assert int(limited.headers["retry-after"]) > 0
    assert len(leads) == 2


async def test_gaps_from_the_model_and_from_excerpts_that_match_nothing(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    def gap(question: str) -> Reply:
        return Reply(
            tokens=[], tool_calls=[Call("record_unanswered_question", {"question": question})]
        )

    fake_llm.script(
        gap("Does she speak German?"), Reply(tokens=["The resume does not say."]),
        gap("does she  speak german"), Reply(tokens=["Still no idea."]),
        gap("Is she on call?"), Reply(tokens=["No idea."]),
    )  # fmt: skip
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        async with chat(port) as client:
            for question in ("Does she speak German?", "German?", "On call?"):
                await client.ask(question)
        async with admin_http(port) as admin:
            by_count = (await admin.get("/gaps")).json()["items"]
            by_time = (await admin.get("/gaps", params={"order": "recent", "limit": 1})).json()
    async with running_app(make_settings(admin_token=TOKEN, **NO_MODEL)) as port:
        async with chat(port) as client:
            await client.ask("What about quantum chromodynamics?")  # in no passage
            await client.ask("Where did she study?")  # matches Education
        async with admin_http(port) as admin:
            offline = (await admin.get("/gaps", params={"order": "recent"})).json()["items"]
            stats = (await admin.get("/stats", params={"days": 1})).json()

    assert [(g["question"], g["count"]) for g in by_count] == [
        ("Does she speak German?", 2),
        ("Is she on call?", 1),
    ]
    assert [g["question"] for g in by_time["items"]] == ["Is she on call?"]
    assert [g["question"] for g in offline] == [
        "What about quantum chromodynamics?",
        "Is she on call?",
        "Does she speak German?",
    ]
    assert (stats["gaps"], stats["leads"]) == (3, 0)


async def test_leads_in_csv_exports_and_stats(make_settings: SettingsFactory) -> None:
    session = str(uuid.uuid4())
    formula = {"email": "=cmd@acme.example", "name": "@SUM(A1)", "message": '-2+3, "quoted"'}
    async with running_app(make_settings(admin_token=TOKEN)) as port:
        for body in (FORM, formula):
            assert (await send(port, session, body)).status_code == 201
        async with admin_http(port) as admin:
            exported = await admin.get("/leads/export")
            one = (await admin.get(f"/conversations/{session}/export")).json()
            markdown = await admin.get(f"/conversations/{session}/export?format=markdown")
            every = (await admin.get("/export")).json()
            stats = (await admin.get("/stats")).json()
            first = (await admin.get("/leads", params={"limit": 1})).json()
            second = (await admin.get("/leads", params={"cursor": first["next_cursor"]})).json()
            bad = await admin.get("/leads", params={"cursor": "nonsense"})

    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    today = datetime.now(UTC).date().isoformat()
    assert exported.headers["content-disposition"] == f'attachment; filename="leads-{today}.csv"'
    header, newest, oldest = list(csv.reader(io.StringIO(exported.text)))
    assert header == ["id", "session_id", "created_at", "source", "email", "name", "company",
                      "message"]  # fmt: skip
    assert newest[4:] == ["'=cmd@acme.example", "'@SUM(A1)", "", '\'-2+3, "quoted"']
    assert oldest[3:] == ["form", *FORM.values()]
    assert [lead["email"] for lead in one["leads"]] == ["jane@acme.example", "=cmd@acme.example"]
    assert "**Contact (form," in markdown.text
    assert "Jane Doe, jane@acme.example, Acme" in markdown.text
    assert every["conversations"][0]["leads"] == one["leads"]
    assert stats["leads"] == 2
    assert len(first["items"]) == 1
    assert second["next_cursor"] is None
    assert [lead["id"] for lead in first["items"] + second["items"]] == [newest[0], oldest[0]]
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_request"


async def count_leads(settings: object) -> tuple[int, int]:
    async with database(settings) as store, store.begin() as db:  # type: ignore[arg-type]
        leads = await db.scalar(select(func.count()).select_from(Lead))
        outbox = await db.scalar(select(func.count()).select_from(OutboxMessage))
    return leads or 0, outbox or 0


async def test_deleting_or_purging_a_conversation_deletes_its_leads(
    make_settings: SettingsFactory,
) -> None:
    async with webhook_receiver() as hook:
        hook.statuses = [503] * 100  # notifications stay pending in the outbox
        settings = make_settings(admin_token=TOKEN, notify_webhook_url=hook.url)
        kept, deleted, purged = (str(uuid.uuid4()) for _ in range(3))
        async with running_app(settings) as port:
            for session in (kept, deleted, purged):
                assert (await send(port, session, FORM)).status_code == 201
            assert await count_leads(settings) == (3, 3)
            async with admin_http(port) as admin:
                assert (await admin.delete(f"/conversations/{deleted}")).status_code == 204
    assert await count_leads(settings) == (2, 2)
    await set_times(settings, {purged: datetime.now(UTC) - timedelta(days=40)})
    async with database(settings) as store:
        assert await purge_idle(store, days=30) == 1
    assert await count_leads(settings) == (1, 1)
