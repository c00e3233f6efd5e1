"""What the dashboard needs from the server: the page itself, search over conversations,
where answers came from, and what answers visitors now. Over a real server, on SQLite
and PostgreSQL."""

from typing import Any

import httpx
import pytest

from app.admin.page import SECURITY_HEADERS
from app.main import create_app
from devtools.fake_llm import FakeLLM, Reply
from tests.conftest import SettingsFactory
from tests.support.app import running_app

TOKEN = "dashboard-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OPENROUTER = "https://openrouter.ai/api/v1"
NO_MODEL = {"openrouter_api_key": None, "openrouter_base_url": OPENROUTER}


async def ask(http: httpx.AsyncClient, *questions: str) -> str:
    """A new conversation over the public REST route; its session id."""
    session_id: str | None = None
    for question in questions:
        body: dict[str, Any] = {"message": question}
        if session_id:
            body["session_id"] = session_id
        response = await http.post("/api/chat", json=body)
        assert response.status_code == 200, response.text
        session_id = response.json()["session_id"]
    assert session_id is not None
    return session_id


async def found(http: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await http.get("/api/admin/conversations", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_search_finds_words_in_questions_and_answers(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        Reply(tokens=["She led the ", "payments platform ", "migration."]),
        Reply(tokens=["Mostly Kotlin and Go."]),
        Reply(tokens=["Three side projects, ", "all open source."]),
        Reply(tokens=["Yes."]),
    )
    async with (
        running_app(make_settings(admin_token=TOKEN)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        payments = await ask(http, "What did she do at Klarna?")
        kotlin = await ask(http, "Which LANGUAGES does she use day to day?")
        projects = await ask(http, "Any hobby work outside her job?", "Is it on GitHub?")

        assert await found(http, q="payments") == [payments]  # a word of an answer
        assert await found(http, q="klarna") == [payments]  # of a question, any case
        assert await found(http, q="languages") == [kotlin]
        assert await found(http, q="project") == [projects]  # "projects" in the answer
        assert await found(http, q="github") == [projects]  # the second question
        assert await found(http, q="  Kotlin   Go ") == [kotlin]  # all words, one message
        assert await found(http, q="kotlin payments") == []  # never in one message
        assert await found(http, q="rust") == []
        for wildcard in ("%", "_", "%%", "Kl_rna", "pay%"):
            assert await found(http, q=wildcard) == [], wildcard  # taken literally
        assert await found(http, q="") == [projects, kotlin, payments]
        refused = await http.get("/api/admin/conversations", params={"q": "x" * 201}, headers=AUTH)
        nul = await http.get("/api/admin/conversations", params={"q": "pay\x00ments"}, headers=AUTH)
        unauthorised = await http.get("/api/admin/conversations", params={"q": "payments"})

    assert refused.status_code == 422
    assert nul.status_code == 200
    assert unauthorised.status_code == 401


async def test_search_combines_with_dates_and_pages(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.default = Reply(tokens=["She worked on Kubernetes operators."])
    async with (
        running_app(make_settings(admin_token=TOKEN)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        ids = [await ask(http, f"Question number {n}?") for n in range(5)]
        fake_llm.default = Reply(tokens=["Nothing about clusters."])
        other = await ask(http, "Something else?")
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"q": "kubernetes", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/api/admin/conversations", params=params, headers=AUTH)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ids[::-1]
        assert other not in seen
        assert await found(http, q="kubernetes", until="2000-01-01") == []
        assert await found(http, q="kubernetes", since="2000-01-01", limit=1) == [ids[-1]]


async def test_listing_says_whether_the_model_or_the_excerpts_answered(
    make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(
        Reply(tokens=["From the model."]),
        *[Reply(status=503)] * 3,  # every attempt fails: the resume's excerpts answer
        Reply(tokens=["Model again."]),
        *[Reply(status=503)] * 3,
    )
    settings = make_settings(admin_token=TOKEN, llm_retry_max_wait=0.05)
    async with (
        running_app(settings) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        by_model = await ask(http, "Who is she?")
        by_excerpts = await ask(http, "What languages does she speak?")
        both = await ask(http, "Where does she live?", "What languages does she speak?")
        listing = (await http.get("/api/admin/conversations", headers=AUTH)).json()
    sources = {item["id"]: item["sources"] for item in listing["items"]}
    assert sources == {
        by_model: ["model"],
        by_excerpts: ["resume_excerpt"],
        both: ["model", "resume_excerpt"],
    }


@pytest.mark.parametrize(
    ("overrides", "mode", "models"),
    [
        (
            {"llm_model": "openai/gpt-4o-mini", "llm_fallback_models": "meta/llama-3"},
            "model",
            ["openai/gpt-4o-mini", "meta/llama-3"],
        ),
        (NO_MODEL, "resume_excerpt", []),
        (NO_MODEL | {"fallback_mode": "error"}, "unavailable", []),
    ],
)
async def test_stats_say_what_answers_visitors(
    make_settings: SettingsFactory, overrides: dict[str, Any], mode: str, models: list[str]
) -> None:
    async with (
        running_app(make_settings(admin_token=TOKEN, **overrides)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        stats = (await http.get("/api/admin/stats", params={"days": 1}, headers=AUTH)).json()
        ready = await http.get("/health/ready")
    assert stats["answering"] == {"mode": mode, "models": models}
    assert ready.json()["mode"] == mode


async def test_the_page_is_absent_without_admin_token(make_settings: SettingsFactory) -> None:
    async with (
        running_app(make_settings()) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", follow_redirects=True) as http,
    ):
        unknown = await http.get("/no-such-page")
        answers = [await http.get(path) for path in ("/admin", "/admin/admin.js", "/admin/")]
    for answer in answers:
        assert (answer.status_code, answer.json()) == (404, unknown.json())


async def test_the_page_and_its_files_carry_security_headers(
    make_settings: SettingsFactory,
) -> None:
    async with (
        running_app(make_settings(admin_token=TOKEN)) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        page = await http.get("/admin")
        script = await http.get("/admin/admin.js")
        style = await http.get("/admin/admin.css")
        missing = [await http.get(p) for p in ("/admin/index.html", "/admin/../main.py")]
    assert page.status_code == script.status_code == style.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    for response in (page, script, style):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<script src="admin/admin.js" defer></script>' in page.text
    assert "<script>" not in page.text
    assert " style=" not in page.text
    assert "innerHTML" not in script.text
    assert "insertAdjacentHTML" not in script.text
    assert all(response.status_code == 404 for response in missing)


def test_the_page_is_not_in_the_api_schema() -> None:
    paths = create_app().openapi()["paths"]
    assert not [path for path in paths if path == "/admin" or path.startswith("/admin/")]
    parameters = paths["/api/admin/conversations"]["get"]["parameters"]
    assert "q" in [parameter["name"] for parameter in parameters]
