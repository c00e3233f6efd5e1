"""Reloading the resume without a restart; a broken file leaves the old one in place."""

from pathlib import Path

import httpx

from devtools.fake_llm import FakeLLM
from tests.conftest import SettingsFactory
from tests.support.app import running_app
from tests.support.chat_client import chat

TOKEN = "owner-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_reload_swaps_the_resume_and_refuses_a_broken_file(
    make_settings: SettingsFactory, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    resume = tmp_path / "resume.md"
    resume.write_text("# Ada Byron\nMathematician\n\n## Languages\nEnglish, French\n")
    settings = make_settings(resume_path=resume, admin_token=TOKEN)
    async with running_app(settings) as port, httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{port}/api"
        before = (await http.get(f"{base}/profile")).json()

        resume.write_text("# Grace Hopper\nRear Admiral\n\n## Languages\nEnglish\n")
        reloaded = await http.post(f"{base}/admin/resume/reload", headers=AUTH)
        after = (await http.get(f"{base}/profile")).json()
        async with chat(port) as client:
            await client.ask("Who are you about?")

        resume.write_text("")
        broken = await http.post(f"{base}/admin/resume/reload", headers=AUTH)
        still = (await http.get(f"{base}/profile")).json()
        anonymous = await http.post(f"{base}/admin/resume/reload")

    assert before["name"] == "Ada Byron"
    assert reloaded.status_code == 200
    assert reloaded.json()["name"] == "Grace Hopper"
    assert after["name"] == "Grace Hopper"
    assert "Grace Hopper" in fake_llm.requests[-1].body["messages"][0]["content"]
    assert broken.status_code == 422
    assert broken.json()["error"]["code"] == "resume_invalid"
    assert str(resume) in broken.json()["error"]["message"]
    assert still["name"] == "Grace Hopper"
    assert anonymous.status_code == 401
