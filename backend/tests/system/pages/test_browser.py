"""The browser chat (`/` and `/widget.js`) in a real browser.

Debian's Chromium is driven by Playwright (nothing is downloaded), against the app on a
free port with the loopback fake LLM, all on the module's event loop (the fixtures are in
conftest.py).
"""

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import (
    Locator,
    Page,
    WebSocketRoute,
    expect,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from app.core.config import OPENROUTER_BASE_URL
from app.main import create_app
from devtools.fake_llm import FakeLLM, Reply, lorem_tokens
from tests.conftest import SettingsFactory
from tests.support.app import running_app, serve
from tests.support.browser import PAGE_MARKS, PHONE

ADMIN_TOKEN = "browser-test-admin-token"

# One browser serves the whole module, so the tests, their apps and fake LLMs and the
# browser all run on the module's event loop.
pytestmark = PAGE_MARKS

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Jane Doe, portfolio</title>
<style>
  /* A hostile host page: none of this may reach the widget. */
  body { margin: 0; padding: 48px; font: 20px/1.6 Georgia, serif; background: #fbf7ef; }
  button { background: red !important; color: yellow !important; font-size: 30px !important; }
  div, p, section, header { color: red !important; margin: 40px !important; }
  * { letter-spacing: 3px !important; }
</style></head>
<body>
  <h1>Jane Doe</h1>
  <p>Designer and engineer. <a href="#work">See my work</a>.</p>
  <p id="work">Selected projects, writing and talks.</p>
  SNIPPET
</body></html>
"""


@asynccontextmanager
async def chat_page(
    page: Page, make_settings: SettingsFactory, **overrides: object
) -> AsyncIterator[int]:
    """The app's own chat page at /, loaded; yields the app's port."""
    settings = make_settings(**{"allowed_origins": ["*"], **overrides})
    async with running_app(settings) as port:
        await page.goto(f"http://127.0.0.1:{port}/")
        yield port


@asynccontextmanager
async def embedding_site(
    make_settings: SettingsFactory,
    *,
    allowed: bool,
    spelled: Callable[[str], str] = str,
    **overrides: object,
) -> AsyncIterator[str]:
    """A page on another origin with the embed snippet; the app allows that origin or not.

    `spelled` is how ALLOWED_ORIGINS writes the origin. Yields the page's URL.
    """
    holder: dict[str, int] = {}

    async def home(_request: Request) -> HTMLResponse:
        server = f"http://127.0.0.1:{holder['port']}"
        snippet = (
            f'<script src="{server}/widget.js" data-server="{server}" data-title="Ask about Jane"'
            ' data-accent="#7c3aed" data-position="left" defer></script>'
        )
        return HTMLResponse(HOST_PAGE.replace("SNIPPET", snippet))

    site = Starlette(routes=[Route("/", home)])
    async with serve(site, lifespan="off") as site_port:
        origin = f"http://127.0.0.1:{site_port}"
        settings = make_settings(
            allowed_origins=[spelled(origin)] if allowed else ["https://elsewhere.example"],
            **overrides,
        )
        async with running_app(settings) as app_port:
            holder["port"] = app_port
            yield f"{origin}/"


def answers(page: Page) -> Locator:
    return page.locator(".messages .msg.bot .body")


def notice(page: Page) -> Locator:
    return page.locator(".notice")


async def ask(page: Page, question: str) -> None:
    box = page.get_by_label("Your question")
    await box.fill(question)
    await box.press("Enter")


async def session_id(page: Page, port: int) -> str:
    key = f"resume-chat:session:http://127.0.0.1:{port}"
    value = await page.evaluate("key => localStorage.getItem(key)", key)
    assert isinstance(value, str)
    return value


async def test_page_shows_greeting_and_suggested_questions(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["She studied at KTH."]))
    async with chat_page(page, make_settings) as port:
        data = await (await page.request.get(f"http://127.0.0.1:{port}/api/profile")).json()
        await expect(page.locator(".title")).to_have_text(data["name"])
        await expect(page.locator(".subtitle")).to_have_text(data["headline"])
        await expect(page.locator(".log > .msg.bot")).to_have_text(data["greeting"])
        chips = page.get_by_role("group", name="Suggested questions").get_by_role("button")
        await expect(chips).to_have_text(data["suggested_questions"])
        await expect(page.get_by_label("Your question")).to_be_focused()
        assert await page.title() == f"Chat with {data['name']}"

        await chips.last.click()
        await expect(page.locator(".messages .msg.user")).to_have_text(
            f"You said: {data['suggested_questions'][-1]}"
        )
        await expect(answers(page)).to_have_text("She studied at KTH.")
        await expect(chips.first).to_be_hidden()


async def test_answer_streams_in_and_renders_markdown(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM, screenshots: Path
) -> None:
    tokens = [
        "Maya ", "has ", "led ", "**payments** ", "teams.", "\n\nHighlights:", "\n\n- ",
        "the *event-sourced* ledger", "\n- ", "card ", "authorisation", "\n\n1. ", "`Kafka`",
        "\n\nSee [her GitHub](https://github.com/maya-lindqvist-example).",
    ]  # fmt: skip
    fake_llm.script(Reply(tokens=tokens, token_delay=0.15))
    async with chat_page(page, make_settings):
        await ask(page, "What has she led?")
        answer = answers(page)
        await expect(answer).to_contain_text("Maya has")
        partial = await answer.inner_text()
        announced = await page.locator("[aria-live]").inner_text()
        await expect(page.get_by_role("button", name="Stop the answer")).to_be_visible()
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=screenshots / "page-streaming-phone.png")

        await expect(answer.locator("li")).to_have_text(
            ["the event-sourced ledger", "card authorisation", "Kafka"]
        )
        await expect(answer.get_by_role("link")).to_have_count(1)
        assert "authorisation" not in partial
        assert "Maya" not in announced  # nothing is announced while the answer streams
        await expect(answer.locator("strong")).to_have_text("payments")
        await expect(answer.locator("em")).to_have_text("event-sourced")
        await expect(answer.locator("code")).to_have_text("Kafka")
        link = answer.get_by_role("link", name="her GitHub")
        await expect(link).to_have_attribute("href", "https://github.com/maya-lindqvist-example")
        await expect(link).to_have_attribute("target", "_blank")
        await expect(link).to_have_attribute("rel", "noopener noreferrer")
        await expect(page.locator("[aria-live]")).to_contain_text("Maya has led payments teams.")
        await expect(page.get_by_role("button", name="Send")).to_be_visible()


async def test_reload_restores_the_conversation(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Stockholm, ", "**Sweden**."]))
    async with chat_page(page, make_settings) as port:
        await ask(page, "Where is she based?")
        await expect(answers(page)).to_have_text("Stockholm, Sweden.")
        first = await session_id(page, port)

        await page.reload()
        bodies = page.locator(".messages .msg .body")
        await expect(bodies).to_have_text(["Where is she based?", "Stockholm, Sweden."])
        await expect(answers(page).locator("strong")).to_have_text("Sweden")
        await expect(page.get_by_role("group", name="Suggested questions")).to_be_hidden()
        assert await session_id(page, port) == first
    assert len(fake_llm.requests) == 1


async def test_dropped_connection_reconnects_and_resumes(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Go and Python."]), Reply(tokens=["Since 2021."]))
    settings = make_settings(allowed_origins=["*"], shutdown_grace_seconds=1.0)
    async with running_app(settings) as port:
        await page.goto(f"http://127.0.0.1:{port}/")
        await ask(page, "Which languages?")
        await expect(answers(page)).to_have_text("Go and Python.")
    await expect(notice(page)).to_contain_text("Reconnecting")

    async with serve(create_app(settings), port=port):  # the same database, the same port
        await expect(notice(page)).to_be_hidden(timeout=15_000)
        await expect(answers(page)).to_have_text(["Go and Python."])
        await ask(page, "Since when?")
        await expect(answers(page)).to_have_text(["Go and Python.", "Since 2021."])
    sent = [m["content"] for m in fake_llm.requests[-1].body["messages"][1:]]
    assert sent == ["Which languages?", "Go and Python.", "Since when?"]


async def test_an_answer_cut_off_mid_stream_carries_on_after_reconnecting(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    tokens = lorem_tokens(60)
    fake_llm.script(Reply(tokens=tokens, token_delay=0.05))
    urls: list[str] = []

    async def cut_the_first_socket_after_ten_chunks(socket: WebSocketRoute) -> None:
        urls.append(socket.url)
        server, first, chunks = socket.connect_to_server(), len(urls) == 1, 0

        async def from_server(message: str | bytes) -> None:
            nonlocal chunks
            chunks += json.loads(message)["type"] == "chunk"
            if first and chunks > 10:
                await socket.close(code=1011, reason="network trouble")
            else:
                socket.send(message)

        server.on_message(from_server)

    await page.route_web_socket(re.compile(r"/ws"), cut_the_first_socket_after_ten_chunks)
    async with chat_page(page, make_settings):
        await ask(page, "Tell me everything.")
        await expect(answers(page)).to_have_text(["".join(tokens)], timeout=20_000)
        await expect(page.locator(".messages .msg")).to_have_count(2)
        await expect(page.get_by_role("button", name="Send")).to_be_visible()
    assert len(urls) == 2
    assert "last_seq=10" in urls[1]


async def test_offline_reads_as_a_sentence(page: Page, make_settings: SettingsFactory) -> None:
    async with chat_page(page, make_settings):
        await expect(page.locator(".log > .msg.bot")).to_be_visible()
        await page.context.set_offline(True)
        await expect(notice(page)).to_have_text(re.compile(r"^You're offline\."))
        await page.context.set_offline(False)
        await expect(notice(page)).to_be_hidden()
        await expect(page.get_by_role("button", name="Send")).to_be_enabled()


async def test_stop_cancels_the_answer(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    full = "".join(lorem_tokens(60))
    fake_llm.script(Reply(tokens=lorem_tokens(60), token_delay=0.1))
    async with chat_page(page, make_settings, admin_token=ADMIN_TOKEN) as port:
        await ask(page, "Tell me everything.")
        await expect(answers(page)).to_contain_text("Alex is a backend")
        await page.get_by_role("button", name="Stop the answer").click()
        await expect(page.locator(".msg.bot .meta")).to_have_text("Stopped.")
        await expect(page.get_by_role("button", name="Send")).to_be_visible()
        shown = await answers(page).inner_text()
        assert 0 < len(shown) < len(full)
        await fake_llm.wait_idle()
        assert fake_llm.cancelled_streams == 1

        sid = await session_id(page, port)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.get(f"/api/admin/conversations/{sid}", headers=headers)
        stored = response.json()["messages"][-1]
        assert stored["finish_reason"] == "cancelled"
        assert stored["content"] == shown


async def test_html_in_an_answer_shows_as_text_and_never_runs(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    tokens = [
        "Look: <img src=x ", 'onerror="window.__xss=1"> and ', "<script>window.__xss=2</script>",
        " and [a link](javascript:window.__xss=3) and **<b>bold</b>** and",
        ' <a href="javascript:window.__xss=4" onclick="window.__xss=5">an anchor</a>',
    ]  # fmt: skip
    shown = "".join(tokens).replace("**", "").replace("[a link](", "a link (")
    fake_llm.script(Reply(tokens=tokens, token_delay=0.05))
    async with chat_page(page, make_settings):
        await ask(page, "Say something dangerous.")
        for attempt in ("streamed", "reloaded"):
            if attempt == "reloaded":
                await page.reload()
            answer = answers(page)
            await expect(answer).to_have_text(shown)
            await expect(page.get_by_role("button", name="Send")).to_be_visible()
            assert await answer.locator("img, script, b, a").count() == 0, attempt
            await answer.get_by_text("an anchor").click()
            assert await page.evaluate("window.__xss") is None, attempt
            assert await page.evaluate("document.querySelectorAll('img, b').length") == 0


async def test_rate_limit_reads_as_a_sentence_with_a_countdown(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM, screenshots: Path
) -> None:
    fake_llm.script(Reply(tokens=["The first answer."]))
    async with chat_page(page, make_settings, rate_limit_questions_per_session="1/minute"):
        await ask(page, "First question?")
        await expect(answers(page)).to_have_text("The first answer.")
        # The text shows before `done`; a question asked before it is refused as busy.
        await expect(page.get_by_role("button", name="Send")).to_be_visible()
        await ask(page, "Second question?")
        countdown = re.compile(r"You can ask again in (\d+) seconds\.")
        await expect(notice(page)).to_have_text(re.compile("question limit.*" + countdown.pattern))
        first = int(countdown.findall(await notice(page).inner_text())[0])
        await asyncio.sleep(1.3)
        later = int(countdown.findall(await notice(page).inner_text())[0])
        assert 50 <= later < first <= 60
        await expect(page.get_by_label("Your question")).to_have_value("Second question?")
        await expect(page.get_by_role("button", name="Send")).to_be_disabled()
        await expect(page.locator(".messages .msg.user")).to_have_count(1)
        await page.screenshot(path=screenshots / "page-rate-limited-desktop.png")
    assert len(fake_llm.requests) == 1


async def test_unavailable_model_reads_as_a_sentence(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(*[Reply(status=503)] * 3)
    async with chat_page(page, make_settings, fallback_mode="error"):
        await ask(page, "Anyone there?")
        await expect(notice(page)).to_have_text(
            "The assistant is unavailable right now. Please try again in a moment."
        )
        await expect(answers(page)).to_have_count(0)
        await expect(page.get_by_role("button", name="Send")).to_be_enabled()


async def test_resume_excerpt_answers_are_marked(
    page: Page, make_settings: SettingsFactory, screenshots: Path
) -> None:
    offline = {"openrouter_api_key": None, "openrouter_base_url": OPENROUTER_BASE_URL}
    async with chat_page(page, make_settings, **offline):
        await expect(page.locator(".note")).to_contain_text("quoted straight from the resume")
        await ask(page, "Where did she study?")
        await expect(page.locator(".messages .msg.bot .badge")).to_have_text("From the resume")
        await expect(answers(page)).to_contain_text("Education")
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=screenshots / "page-excerpt-phone.png")


async def test_embed_snippet_works_from_an_allowed_origin(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM, screenshots: Path
) -> None:
    fake_llm.script(Reply(tokens=["Jane ", "designs ", "**calm** interfaces."], token_delay=0.05))
    # As an owner may write it, HTTP://127.0.0.1:port/: CORS and the socket both accept it.
    spelled = lambda origin: origin.upper() + "/"  # noqa: E731
    async with embedding_site(make_settings, allowed=True, spelled=spelled) as site:
        await page.goto(site)
        launcher = page.locator(".launcher")
        await expect(launcher).to_have_css("background-color", "rgb(124, 58, 237)")
        await expect(launcher).to_have_css("font-size", "15px")
        box = await launcher.bounding_box()
        assert box is not None
        assert box["x"] < 100  # data-position="left"
        await page.screenshot(path=screenshots / "embed-closed-desktop.png")

        await launcher.click()
        await expect(page.get_by_role("dialog", name="Ask about Jane")).to_be_visible()
        await expect(page.get_by_label("Your question")).to_be_focused()
        await expect(page.locator(".log > .msg.bot")).to_contain_text("Maya")
        await ask(page, "What does she do?")
        await expect(answers(page)).to_have_text("Jane designs calm interfaces.")
        await expect(answers(page).locator("strong")).to_have_css("color", "rgb(28, 34, 48)")
        await page.screenshot(path=screenshots / "embed-desktop.png")
        await page.set_viewport_size(PHONE)
        panel = await page.locator(".panel").bounding_box()
        assert panel == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
        await page.screenshot(path=screenshots / "embed-phone.png")


async def test_embed_snippet_is_refused_from_another_origin(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    async with embedding_site(make_settings, allowed=False) as site:
        await page.goto(site)
        await page.locator(".launcher").click()
        refused = re.compile(r"isn't available on this website\. Site owner: add http://127")
        await expect(notice(page)).to_have_text(refused)
        await expect(page.get_by_label("Your question")).to_be_disabled()
        await expect(page.get_by_role("button", name="Send")).to_be_disabled()
        await expect(page.get_by_role("group", name="Suggested questions")).to_be_hidden()
        await expect(page.locator(".messages .msg")).to_have_count(0)
    assert fake_llm.requests == []


async def test_keyboard_only(page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(tokens=["She ", "builds ", "backends."]))
    async with embedding_site(make_settings, allowed=True) as site:
        await page.goto(site)
        launcher = page.locator(".launcher")
        await page.keyboard.press("Tab")  # the host page's link
        await page.keyboard.press("Tab")
        await expect(launcher).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(launcher).to_have_attribute("aria-expanded", "true")
        question = page.get_by_label("Your question")
        await expect(question).to_be_focused()
        await page.keyboard.type("What does she do?")
        await page.keyboard.press("Enter")
        await expect(answers(page)).to_have_text("She builds backends.")
        await expect(page.locator("[aria-live]")).to_have_text("She builds backends.")
        await page.keyboard.press("Escape")
        await expect(page.locator(".panel")).to_be_hidden()
        await expect(launcher).to_be_focused()
        await expect(launcher).to_have_attribute("aria-expanded", "false")


async def test_screenshots_of_the_chat_page(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM, screenshots: Path
) -> None:
    answer = (
        "Maya is a **staff engineer** at Nordpay, where she leads the payments platform team.\n\n"
        "Highlights:\n\n"
        "- Moved card processing to an *event-sourced* ledger on `Kafka`\n"
        "- Cut p99 authorisation latency from 420 ms to 95 ms\n"
        "- Mentors four engineers\n\n"
        "More on [her GitHub](https://github.com/maya-lindqvist-example)."
    )
    fake_llm.script(Reply(tokens=re.findall(r"\S+\s*", answer)))
    async with chat_page(page, make_settings):
        await expect(page.get_by_role("group", name="Suggested questions")).to_be_visible()
        await page.screenshot(path=screenshots / "page-start-desktop.png")
        await ask(page, "What does Maya do now?")
        await expect(answers(page).locator("li")).to_have_count(3)
        await expect(page.get_by_role("button", name="Send")).to_be_visible()
        await page.screenshot(path=screenshots / "page-desktop.png")
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=screenshots / "page-phone.png")


async def test_leave_your_contact_with_the_keyboard(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM, screenshots: Path
) -> None:
    async with embedding_site(make_settings, allowed=True, admin_token=ADMIN_TOKEN) as site:
        await page.goto(site)
        await page.locator(".launcher").focus()
        await page.keyboard.press("Enter")
        server = await page.locator("script[data-server]").get_attribute("data-server")
        key = f"resume-chat:session:{server}"
        await page.wait_for_function("key => localStorage.getItem(key)", arg=key)
        toggle = page.get_by_role("button", name="Leave your contact")
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await toggle.focus()
        await page.keyboard.press("Enter")
        email = page.get_by_label("E-mail (required)")
        await expect(email).to_be_focused()
        await page.keyboard.type("jane(at)acme")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("alert")).to_have_text(
            "That e-mail address doesn't look right. Please check it."
        )
        await expect(email).to_have_attribute("aria-invalid", "true")
        await email.fill("jane@acme.example")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Jane Doe")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Acme")
        await page.screenshot(path=screenshots / "embed-contact-desktop.png")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("alert")).to_have_text("Thank you! Your details were sent.")
        await expect(page.get_by_role("button", name="Done")).to_be_focused()
        await page.keyboard.press("Escape")  # closes the form, not the chat
        await expect(toggle).to_be_focused()
        await expect(page.locator(".panel")).to_be_visible()
        sid = await page.evaluate("key => localStorage.getItem(key)", key)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
            leads = (await http.get(f"{server}/api/admin/leads")).json()["items"]
    [lead] = leads
    assert lead["session_id"] == sid
    assert (lead["email"], lead["name"], lead["company"]) == (
        "jane@acme.example",
        "Jane Doe",
        "Acme",
    )
    assert lead["source"] == "form"
    assert fake_llm.requests == []


async def test_offline_answers_carry_one_marker_and_keep_their_badge_after_a_reload(
    page: Page, make_settings: SettingsFactory, screenshots: Path
) -> None:
    offline = {"openrouter_api_key": None, "openrouter_base_url": OPENROUTER_BASE_URL}
    badges = page.locator(".messages .msg.bot .badge")
    async with chat_page(page, make_settings, **offline):
        await ask(page, "Is she open to remote work?")
        await expect(badges).to_have_count(1)
        await ask(page, "xyzzy plugh")
        await expect(badges).to_have_count(2)
        await ask(page, "What does she think of xyzzy?")
        await expect(badges).to_have_count(3)
        first, second, third = (answers(page).nth(i) for i in range(3))
        await expect(first).to_contain_text("Stockholm, Sweden (open to remote)")
        await expect(second).to_contain_text(
            "Maya Lindqvist's resume doesn't mention that. Here is Maya's own summary:"
        )
        await expect(third).to_contain_text(
            "Maya Lindqvist's resume doesn't mention that. Here is how Maya describes her work:"
        )
        await expect(page.get_by_text("introduces them")).to_have_count(0)
        await expect(page.get_by_text(re.compile("offline", re.IGNORECASE))).to_have_count(1)
        await expect(page.locator(".note")).to_be_visible()
        await page.screenshot(path=screenshots / "page-offline.png")

        await page.reload()
        await expect(answers(page)).to_have_count(3)
        await expect(badges).to_have_count(3)
        await expect(page.locator(".messages .msg.user + .msg.bot .badge")).to_have_count(3)
        await expect(page.get_by_text(re.compile("offline", re.IGNORECASE))).to_have_count(1)


async def test_a_soft_line_break_reads_as_a_space(
    page: Page, make_settings: SettingsFactory, fake_llm: FakeLLM
) -> None:
    fake_llm.script(Reply(tokens=["Maya builds\nreliable ", "systems.  \nIn Go\\\nand Python."]))
    async with chat_page(page, make_settings):
        await ask(page, "What does she build?")
        await expect(answers(page)).to_contain_text("and Python.")
        paragraph = answers(page).locator("p")
        await expect(paragraph).to_have_count(1)
        await expect(paragraph.locator("br")).to_have_count(2)
        assert await paragraph.inner_text() == "Maya builds reliable systems.\nIn Go\nand Python."
