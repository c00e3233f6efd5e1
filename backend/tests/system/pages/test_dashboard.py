"""The owner's dashboard (`/admin`) in a real browser, on data made through the public API.

Debian's Chromium driven by Playwright, the app on a free port with the loopback fake
LLM, all on the module's event loop (the fixtures are in conftest.py).
"""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, Request, expect

from devtools.fake_llm import FakeLLM, Reply
from devtools.fake_llm import PromptCache as ProviderCache
from tests.conftest import SettingsFactory
from tests.support.app import running_app, uvicorn_process
from tests.support.browser import DESKTOP, PAGE_MARKS, PHONE, axe_violations

TOKEN = "dashboard-browser-token"
OPENROUTER = "https://openrouter.ai/api/v1"
NO_MODEL = {"openrouter_api_key": None, "openrouter_base_url": OPENROUTER}
HOSTILE = (  # under the listing's 120 characters, so shown whole there too
    '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    '<b>bold</b> & <a href="javascript:alert(3)">a</a>'
)
QUESTIONS = [
    "What did she build at Klarna?",
    "Is she open to relocating to Berlin?",
    "Which languages does she use day to day?",
    "Has she managed a team?",
    "What is her notice period?",
]
HTML_ANSWER = '<iframe src="javascript:window.__xss=4"></iframe><img src=y onerror=alert(1)>'

pytestmark = PAGE_MARKS


@asynccontextmanager
async def dashboard(
    page: Page, make_settings: SettingsFactory, **overrides: object
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with ADMIN_TOKEN and /admin open; yields a client of its public API."""
    async with running_app(make_settings(admin_token=TOKEN, **overrides)) as port:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            await page.goto(f"{base}/admin")
            yield http


async def converse(http: httpx.AsyncClient, *questions: str) -> str:
    """A visitor's conversation over POST /api/chat; its session id."""
    session_id: str | None = None
    for question in questions:
        body = {"message": question} | ({"session_id": session_id} if session_id else {})
        response = await http.post("/api/chat", json=body)
        assert response.status_code == 200, response.text
        session_id = response.json()["session_id"]
    assert session_id is not None
    return session_id


def cents(usd: float) -> str:
    """A figure under a cent as the dashboard shows it: JavaScript's toPrecision(2)."""
    return "$" + format(Decimal(f"{usd:.2g}"), "f")


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def sign_in(page: Page, token: str = TOKEN) -> None:
    field = page.get_by_label("Admin token")
    await field.fill(token)
    await field.press("Enter")


def cards(page: Page) -> Locator:
    return page.locator("#conversation-list .card")


async def stored_token(page: Page) -> Any:
    return await page.evaluate("sessionStorage.getItem('resume-chat:admin-token')")


async def serious_violations(page: Page, where: str) -> None:
    found = await axe_violations(page)
    assert not found, f"{where}: {json.dumps(found, indent=1)}"


async def test_sign_in_search_read_export_and_delete(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM, screenshots: Path
) -> None:
    fake_llm.script(
        Reply(tokens=["She led the ", "payments platform ", "rebuild."]),
        Reply(tokens=["Stockholm, Sweden."]),
    )
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))
    async with dashboard(page, make_settings) as http:
        klarna = await converse(http, "What did she build at Klarna?")
        await converse(http, "Where is she based?")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await expect(page.get_by_label("Admin token")).to_be_focused()
        await sign_in(page)

        await expect(cards(page)).to_have_count(2)
        await expect(cards(page).locator("a")).to_have_text(
            ["Where is she based?", "What did she build at Klarna?"]
        )
        await expect(cards(page).first.locator(".meta")).to_contain_text("1 question Model")
        listed = (await http.get("/api/admin/conversations", headers=auth())).json()["items"]
        last_active = cards(page).first.locator(".meta time")
        await expect(last_active).to_have_attribute("datetime", listed[0]["updated_at"])
        await expect(last_active).to_have_text(re.compile(r"^\d+ \w+ \d{4}, \d\d:\d\d UTC$"))
        await page.get_by_label("Search questions and answers").fill("payments")
        await page.get_by_label("Search questions and answers").press("Enter")
        await expect(cards(page)).to_have_count(1)
        await expect(cards(page).locator("a")).to_have_text("What did she build at Klarna?")

        await cards(page).get_by_role("link").click()
        await expect(page).to_have_url(re.compile(f"#conversation/{klarna}$"))
        heading = page.get_by_role("heading", level=1)
        await expect(heading).to_have_text(re.compile(r"^Conversation of \d+ \w+ \d{4}"))
        await expect(heading).to_be_focused()
        turns = page.locator("#turns > li")
        await expect(turns.locator(".text")).to_have_text(
            ["What did she build at Klarna?", "She led the payments platform rebuild."]
        )
        facts = dict(
            zip(
                await turns.nth(1).locator("dt").all_inner_texts(),
                await turns.nth(1).locator("dd").all_inner_texts(),
                strict=True,
            )
        )
        messages = (await http.get(f"/api/admin/conversations/{klarna}", headers=auth())).json()[
            "messages"
        ]
        stored = messages[1]
        for n, message in enumerate(messages):  # every turn shows its time
            at = turns.nth(n).locator(".who time")
            await expect(at).to_have_attribute("datetime", message["created_at"])
            await expect(at).to_have_text(re.compile(r" UTC$"))
        assert facts["Model"] == stored["model"] == "openai/gpt-4o-mini"
        assert facts["Source"] == "Model"
        assert facts["Finish"] == "stop"
        assert (
            facts["Tokens"] == f"{stored['prompt_tokens']:,} in, {stored['completion_tokens']} out"
        )
        assert re.fullmatch(r"\d+ ms \(first text after \d+ ms\)", facts["Latency"])
        await page.screenshot(path=screenshots / "dashboard-signed-in-transcript.png")

        exported = await download(page, "Export JSON")
        assert exported[0] == f"conversation-{klarna}.json"
        assert json.loads(exported[1])["messages"][0]["content"] == "What did she build at Klarna?"
        exported = await download(page, "Export Markdown")
        assert exported[0] == f"conversation-{klarna}.md"
        assert "**Visitor:** What did she build at Klarna?" in exported[1]

        await page.get_by_role("button", name="Delete…").click()
        dialog = page.get_by_role("dialog", name="Delete this conversation?")
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Keep it").click()
        await expect(dialog).to_be_hidden()
        assert (await http.get(f"/api/admin/conversations/{klarna}", headers=auth())).is_success
        await page.get_by_role("button", name="Delete…").click()
        await dialog.get_by_role("button", name="Delete", exact=True).click()
        await expect(page.locator("#conversations-status")).to_have_text(
            "The conversation was deleted. No conversation matches these filters."
        )
        await page.get_by_role("button", name="Clear").click()
        await expect(cards(page).locator("a")).to_have_text(["Where is she based?"])
        gone = await http.get(f"/api/admin/conversations/{klarna}", headers=auth())
    assert gone.status_code == 404
    admin_calls = [r for r in requests if "/api/admin/" in r.url]
    assert len(admin_calls) >= 8
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in admin_calls)
    assert not [r.url for r in requests if TOKEN in r.url]


async def test_pages_of_conversations_and_date_filters(
    page: Page, make_settings: SettingsFactory
) -> None:
    async with dashboard(page, make_settings, **NO_MODEL) as http:
        for n in range(26):  # one more than a page
            await converse(http, f"Question number {n}?")
        await sign_in(page)
        titles = cards(page).locator("a")
        await expect(cards(page)).to_have_count(25)
        await expect(titles.first).to_have_text("Question number 25?")  # newest first
        await expect(titles.last).to_have_text("Question number 1?")
        await expect(page.locator("#page-label")).to_have_text("Page 1")
        await expect(page.get_by_role("button", name="Newer")).to_be_disabled()

        await page.get_by_role("button", name="Older").click()
        await expect(titles).to_have_text(["Question number 0?"])
        await expect(page.locator("#page-label")).to_have_text("Page 2")
        await expect(page.get_by_role("button", name="Older")).to_be_disabled()
        await page.get_by_role("button", name="Newer").click()
        await expect(cards(page)).to_have_count(25)
        await expect(titles.first).to_have_text("Question number 25?")

        today = datetime.now(UTC).date()
        until = page.get_by_label("Active until (UTC)")
        since = page.get_by_label("Active from (UTC)")
        await until.fill((today - timedelta(days=1)).isoformat())
        await page.get_by_role("button", name="Apply").click()
        await expect(cards(page)).to_have_count(0)
        await expect(page.locator("#conversations-status")).to_have_text(
            "No conversation matches these filters."
        )
        await until.fill(today.isoformat())
        await since.fill(today.isoformat())
        await page.get_by_role("button", name="Apply").click()
        await expect(cards(page)).to_have_count(25)
        await expect(page.get_by_role("button", name="Older")).to_be_enabled()
        await since.fill((today + timedelta(days=1)).isoformat())
        await until.fill("")
        await page.get_by_role("button", name="Apply").click()
        await expect(cards(page)).to_have_count(0)


async def download(page: Page, button: str) -> tuple[str, str]:
    async with page.expect_download() as started:
        await page.get_by_role("button", name=button).click()
    done = await started.value
    saved = Path(await done.path())
    return done.suggested_filename, await asyncio.to_thread(saved.read_text, encoding="utf-8")


async def test_a_wrong_token_shows_a_message_and_no_data(
    page: Page, make_settings: SettingsFactory
) -> None:
    async with dashboard(page, make_settings) as http:
        await converse(http, "Where is she based?")
        await sign_in(page, "not-the-token")
        await expect(page.get_by_role("alert")).to_have_text(
            "That token is not right. Use the server's ADMIN_TOKEN."
        )
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await expect(page.get_by_role("navigation", name="Sections")).to_be_hidden()
        await expect(cards(page)).to_have_count(0)
        assert await stored_token(page) is None

        await sign_in(page)
        await expect(cards(page)).to_have_count(1)
        assert await stored_token(page) == TOKEN
        await page.reload()  # the tab keeps the token
        await expect(cards(page)).to_have_count(1)

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("alert")).to_have_text("You are signed out.")
        await expect(cards(page)).to_have_count(0)
        assert await stored_token(page) is None
        await page.goto(page.url.split("#")[0] + "#stats")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await expect(page.locator("#totals dd")).to_have_count(0)

        # A token the server stopped accepting (ADMIN_TOKEN changed): signed out, and told.
        await page.evaluate("sessionStorage.setItem('resume-chat:admin-token', 'an-old-token')")
        await page.goto(page.url.split("#")[0] + "#conversations")
        await expect(page.get_by_role("alert")).to_have_text(
            "The server no longer accepts this token. Sign in again."
        )
        await expect(page.get_by_label("Admin token")).to_be_focused()
        await expect(cards(page)).to_have_count(0)
        assert await stored_token(page) is None


async def test_the_token_stays_out_of_logs_urls_and_the_console(page: Page, tmp_path: Path) -> None:
    """`resume-chat serve` as deployed (its request log on): a wrong and a right sign-in,
    a transcript, an export, a sign-out. The token is in no log line, URL or console
    message, and the page asks nothing of any other host (no CDN)."""
    requests: list[Request] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request))
    page.on("console", lambda message: console.append(message.text))
    settings = {
        "admin_token": TOKEN, "log_level": "DEBUG",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
    }  # fmt: skip
    async with uvicorn_process(**settings) as (port, process):
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as http:
            await converse(http, "Where is she based?")
        await page.goto(f"{base}/admin")
        await sign_in(page, TOKEN[::-1])
        await expect(page.get_by_role("alert")).to_contain_text("not right")
        await sign_in(page)
        await cards(page).get_by_role("link").click()
        await expect(page.locator("#turns > li")).to_have_count(2)
        await download(page, "Export Markdown")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Admin token")).to_be_focused()
        process.terminate()
        out, err = await process.communicate()
    log = (out + err).decode()
    assert 'GET /api/admin/conversations?limit=1 HTTP/1.1" 401' in log  # the request log is on
    assert '/export?format=markdown HTTP/1.1" 200' in log
    assert TOKEN not in log
    assert TOKEN[::-1] not in log
    assert not [text for text in console if TOKEN in text]
    assert not [r.url for r in requests if TOKEN in r.url or TOKEN[::-1] in r.url]
    assert {r.url.split("/")[2] for r in requests} == {f"127.0.0.1:{port}"}


async def test_visitor_html_and_script_show_as_text(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Echo: ", HTML_ANSWER]))
    async with dashboard(page, make_settings) as http:
        await converse(http, HOSTILE)
        await sign_in(page)
        link = cards(page).get_by_role("link")
        await expect(link).to_have_text(HOSTILE)
        await link.click()
        await expect(page.locator("#turns .text")).to_have_text([HOSTILE, "Echo: " + HTML_ANSWER])
        await page.get_by_role("link", name="Stats").click()
        await expect(page.locator("#top-questions li").first).to_contain_text("<script>")
        main = page.locator("main")
        assert await main.locator("img, script, b, iframe").count() == 0
        assert await page.evaluate("window.__xss") is None


async def test_stats_chart_totals_answering_mode_and_resume_reload(
    page: Page,
    make_settings: SettingsFactory,
    fake_llm: FakeLLM,
    tmp_path: Path,
    screenshots: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The provider reports cached input tokens, as providers do (the fake is the module's).
    monkeypatch.setattr(fake_llm, "prompt_cache", ProviderCache())
    resume = tmp_path / "resume.md"
    resume.write_text("# Jo Example\n\nBackend engineer in Oslo.\n", encoding="utf-8")
    async with dashboard(
        page, make_settings, resume_path=str(resume), llm_fallback_models="backup/model"
    ) as http:
        await converse(http, "Where is she based?", "Since when?")
        await converse(http, "What does she do?")
        stats = (await http.get("/api/admin/stats", headers=auth())).json()
        await sign_in(page)
        await page.get_by_role("link", name="Stats").click()
        await expect(page.get_by_role("heading", name="Stats", level=1)).to_be_focused()

        totals = page.locator("#totals .total")
        await expect(totals.locator("dt")).to_have_text(
            [
                "Questions", "Conversations", "Tokens", "Estimated cost",
                "Cached input tokens", "Saved by prompt caching",
            ]
        )  # fmt: skip
        figures = stats["totals"]
        tokens = figures["prompt_tokens"] + figures["completion_tokens"]
        assert figures["cached_tokens"] > 0
        assert figures["cost_saved_usd"] > 0
        await expect(totals.locator("dd")).to_have_text(
            [
                "3", "2", f"{tokens:,}",
                cents(figures["cost_usd"]),
                f"{figures['cached_tokens']:,}", cents(figures["cost_saved_usd"]),
            ]
        )  # fmt: skip
        charts = page.get_by_role("img")
        await expect(charts).to_have_count(6)
        today = datetime.now(UTC).date().isoformat()
        await expect(charts.first).to_have_attribute(
            "aria-label", f"Questions per day: 3 in total, at most 3 on {today}."
        )
        bars = page.locator("#charts figure").first.locator("rect")
        await expect(bars).to_have_count(30)
        await expect(bars.last.locator("title")).to_have_text(f"{today}: 3")
        assert await bars.first.get_attribute("height") == "0"
        await expect(page.locator("#answering dd")).to_have_text(
            [
                "The model answers", "openai/gpt-4o-mini, then backup/model",
                "0.15 in, 0.075 cached in, 0.15 cache write, 0.6 out",
                "0", "0",  # leads and unanswered questions in the range
            ]
        )  # fmt: skip
        await page.get_by_label("Range").select_option("7")
        await expect(bars).to_have_count(7)
        await page.screenshot(path=screenshots / "dashboard-stats-chart.png", full_page=True)

        result = page.locator("#reload-result")
        await page.get_by_role("button", name="Reload the resume").click()
        await expect(result).to_have_text(
            re.compile(r"^Reloaded: the resume of Jo Example \(markdown, \d+ characters\)\.$")
        )
        resume.write_text("", encoding="utf-8")
        await page.get_by_role("button", name="Reload the resume").click()
        await expect(result).to_have_text(
            re.compile(r"^Not reloaded; the resume in use is unchanged\. .*empty")
        )


async def test_keyboard_alone_signs_in_opens_a_transcript_and_cancels_a_delete(
    page: Page, make_settings: SettingsFactory
) -> None:
    async with dashboard(page, make_settings) as http:
        await converse(http, "Where is she based?")
        await page.keyboard.type(TOKEN)  # the token field has focus on arrival
        await page.keyboard.press("Enter")
        await expect(cards(page)).to_have_count(1)
        await tab_to(page, "Where is she based?")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", level=1)).to_be_focused()
        await expect(page.locator("#turns .text").first).to_have_text("Where is she based?")
        await tab_to(page, "Delete…")
        await page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(page.get_by_role("button", name="Delete…")).to_be_focused()
        await tab_to(page, "Stats")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("heading", name="Stats", level=1)).to_be_focused()
        await tab_to(page, "Sign out", backwards=True)
        await page.keyboard.press("Enter")
        await expect(page.get_by_label("Admin token")).to_be_focused()


async def tab_to(page: Page, name: str, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the focused control reads `name`."""
    for _ in range(40):
        await page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focused = await page.evaluate("document.activeElement.textContent.trim()")
        if focused == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


async def test_every_view_passes_axe_at_desktop_and_phone_width(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM, screenshots: Path
) -> None:
    fake_llm.default = Reply(tokens=["She led the payments platform.\n\nIn Kotlin and Go."])
    async with dashboard(page, make_settings) as http:
        for question in QUESTIONS:
            await converse(http, question)
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(viewport)
            await page.goto(page.url.split("#")[0])
            if await stored_token(page) is None:
                await serious_violations(page, f"sign-in, {width}")
                await sign_in(page)
            await expect(cards(page)).to_have_count(len(QUESTIONS))
            await check_view(page, f"conversations-{width}", screenshots)
            await cards(page).first.get_by_role("link").click()
            await expect(page.locator("#turns > li")).to_have_count(2)
            await check_view(page, f"transcript-{width}", screenshots)
            for view in ("Stats", "Leads", "Gaps"):
                await page.get_by_role("link", name=view, exact=True).click()
                await expect(page.locator(f"#{view.lower()}-status")).not_to_have_text(
                    re.compile("^$|Loading")
                )
                await check_view(page, f"{view.lower()}-{width}", screenshots)
        await page.evaluate(
            "document.querySelector('main').append(document.createElement('input'))"
        )
        assert "label" in [v["id"] for v in await axe_violations(page)]  # axe does look


async def check_view(page: Page, name: str, screenshots: Path) -> None:
    """No serious accessibility violation, nothing wider than the screen; a screenshot."""
    await serious_violations(page, name)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: {overflow}px wider than the window"
    await page.screenshot(path=screenshots / f"dashboard-{name}.png", full_page=True)


async def test_lead_and_gap_views_say_when_the_server_has_no_such_routes(
    page: Page, make_settings: SettingsFactory
) -> None:
    """Answered 404 here (whether or not this server has the routes): a note, no crash."""

    async def absent(route: Any) -> None:
        await route.fulfill(status=404, json={"error": {"code": "not_found", "message": "No."}})

    await page.route(re.compile(r"/api/admin/(leads|gaps)"), absent)
    async with dashboard(page, make_settings):
        await sign_in(page)
        await expect(page.get_by_label("Left a lead")).to_be_disabled()
        await expect(page.locator("#has-lead-note")).to_have_text("(not available on this server)")
        await page.get_by_role("link", name="Leads").click()
        await expect(page.locator("#leads-status")).to_have_text(
            "Leads are not available on this server: it has no leads routes yet."
        )
        await expect(page.get_by_role("button", name="Download CSV")).to_be_disabled()
        await page.get_by_role("link", name="Gaps").click()
        await expect(page.locator("#gaps-status")).to_have_text(
            "Gaps are not available on this server: it has no gaps routes yet."
        )
        await expect(page.locator("#gaps-table")).to_be_hidden()


async def test_a_lead_and_a_gap_show_in_their_views(
    page: Page, make_settings: SettingsFactory
) -> None:
    gap = "Xylophone zeppelin quokka?"
    async with dashboard(page, make_settings, **NO_MODEL) as http:
        plain = await converse(http, "Where is she based?")
        with_lead = await converse(http, gap)
        await converse(http, gap)
        rare = "Zebra trombone walrus?"  # asked once, and last
        await converse(http, rare)
        contact = {
            "email": "jane@acme.example",
            "name": "Jane Recruiter",
            "company": "Acme",
            "message": "Call me about the <script>role</script>.",
        }
        left = await http.post(f"/api/sessions/{with_lead}/contact", json=contact)
        assert left.status_code == 201, left.text
        await sign_in(page)

        await expect(cards(page)).to_have_count(4)
        await page.get_by_label("Left a lead").check()
        await page.get_by_role("button", name="Apply").click()
        await expect(cards(page)).to_have_count(1)
        await expect(cards(page).locator(".meta")).to_contain_text("1 lead")
        assert plain not in (await cards(page).get_by_role("link").get_attribute("href") or "")

        await page.get_by_role("link", name="Leads").click()
        row = page.locator("#leads-table tbody tr")
        await expect(row).to_have_count(1)
        await expect(row.locator("td")).to_have_text(
            [
                contact["email"], contact["name"], contact["company"], contact["message"],
                "Form", re.compile(r"UTC$"), "Open",
            ]
        )  # fmt: skip
        name, csv = await download(page, "Download CSV")
        assert name.endswith(".csv")
        assert contact["email"] in csv
        await row.get_by_role("link", name=re.compile("^Open the conversation")).click()
        await expect(page).to_have_url(re.compile(f"#conversation/{with_lead}$"))
        await expect(page.locator("#turns .text").first).to_have_text(gap)

        await page.get_by_role("link", name="Gaps").click()
        ours = re.compile("quokka|walrus", re.I)  # the sample resume may not answer others
        asked = page.locator("#gaps-table tbody tr").filter(has_text=ours)
        await expect(asked.locator("td:first-child")).to_have_text([ours, ours])
        await expect(asked.first.locator("td")).to_have_text(
            [re.compile("quokka", re.I), "2", re.compile(r"UTC$")]
        )  # most asked first, with its count and when last asked
        await expect(asked.nth(1).locator("td").nth(1)).to_have_text("1")
        await page.get_by_label("Order").select_option("recent")
        await expect(asked.first).to_contain_text(re.compile("walrus", re.I))
        await page.get_by_role("link", name="Stats").click()
        await expect(page.locator("#answering")).to_contain_text("Leads1")
        assert await page.locator("main b, main script").count() == 0
