"""What the model's tools cost per turn, and how fast the owner hears of a lead.

Runs the app (SQLite in a temporary directory) against the stand-in provider with a
realistic pace (first token after FIRST_TOKEN s, then a token every TOKEN_DELAY s) and a
webhook receiver, all on loopback in this process, and prints:

- tokens and time of a plain turn with LLM_TOOLS=off, with LLM_TOOLS=auto (tools offered,
  not called), and of a contact turn (a streamed record_contact call, the tool, the
  follow-up): medians over TURNS turns each;
- our own count (tiktoken) of what offering the tools adds to every request;
- delivery latency: from the answer's `done` (tool) or the form's 201 to the webhook.

    cd backend && uv run python ../bench/tools_cost.py
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

BACKEND = Path(__file__).resolve().parents[1] / "backend"
sys.path.insert(0, str(BACKEND))

from app.chat.prompts import TOOLS_GUIDANCE  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.serving import serve  # noqa: E402
from app.llm.tokens import TokenCounter  # noqa: E402
from app.main import create_app  # noqa: E402
from devtools.fake_llm import Reply, start_fake_llm  # noqa: E402
from tests.support.chat_client import chat  # noqa: E402
from tests.support.webhook_receiver import webhook_receiver  # noqa: E402

TURNS = 15
FIRST_TOKEN = 0.3
TOKEN_DELAY = 0.02
ANSWER = [f"word{i} " for i in range(40)]
CONTACT = "I'm Jane Doe from Acme, please reach me at jane{n}@acme.example"


async def turn(port: int, question: str) -> tuple[dict[str, Any], float, float]:
    """The `done` data, seconds to the first chunk, seconds to `done`."""
    async with chat(port) as client:
        started = time.perf_counter()
        await client.send({"type": "message", "data": question})
        first = None
        while True:
            frame = await client.receive()
            if frame["type"] == "chunk" and first is None:
                first = time.perf_counter() - started
            if frame["type"] in ("done", "error"):
                assert frame["type"] == "done", frame
                return frame["data"], first or 0.0, time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


async def measure(settings: Settings, question: str, hook: Any = None) -> dict[str, float]:
    prompt, completion, first, total, delivery = [], [], [], [], []
    async with serve(create_app(settings)) as port:
        for n in range(TURNS):
            done, to_first, to_done = await turn(port, question.format(n=n))
            prompt.append(done["usage"]["prompt_tokens"])
            completion.append(done["usage"]["completion_tokens"])
            first.append(to_first)
            total.append(to_done)
            if hook is not None:
                await hook.wait_for(n + 1)
                delivery.append(since_lead(hook.received[n]))
    result = {
        "prompt_tokens": median(prompt),
        "completion_tokens": median(completion),
        "first_chunk_s": median(first),
        "done_s": median(total),
    }
    if delivery:
        result["lead_to_webhook_s"] = median(delivery)
    return result


def since_lead(received: Any) -> float:
    """Seconds from the lead's creation (stored) to the webhook's arrival."""
    created = datetime.fromisoformat(received.json["lead"]["created_at"])
    arrived: float = received.at
    return arrived - created.timestamp()


async def form_latency(settings: Settings, hook: Any) -> tuple[float, float]:
    """Median seconds from sending the form to the webhook, and from the lead's creation."""
    waits, after_lead = [], []
    async with serve(create_app(settings)) as port, httpx.AsyncClient() as http:
        for n in range(TURNS):
            url = f"http://127.0.0.1:{port}/api/sessions/{uuid.uuid4()}/contact"
            started = time.perf_counter()
            response = await http.post(url, json={"email": f"jane{n}@acme.example"})
            assert response.status_code == 201
            await hook.wait_for(n + 1)
            waits.append(hook.received[n].at - time.time() + time.perf_counter() - started)
            after_lead.append(since_lead(hook.received[n]))
    return median(waits), median(after_lead)


def definition_tokens(definitions: list[dict[str, Any]]) -> dict[str, int]:
    counter = TokenCounter()
    return {
        "tool_definitions": counter.count(json.dumps(definitions)),
        "prompt_guidance": counter.count(TOOLS_GUIDANCE.format(name="Maya Lindqvist")),
    }


async def main() -> None:
    pace = Reply(tokens=ANSWER, first_token_delay=FIRST_TOKEN, token_delay=TOKEN_DELAY)
    with tempfile.TemporaryDirectory() as tmp:
        async with start_fake_llm(pace) as fake, webhook_receiver() as hook:
            fake.use_tools = True

            def settings(name: str, **extra: Any) -> Settings:
                return Settings(
                    _env_file=None, openrouter_api_key="sk-bench",
                    openrouter_base_url=fake.base_url,
                    database_url=f"sqlite+aiosqlite:///{tmp}/{name}.db",
                    rate_limit_questions_per_ip="100000/minute",
                    rate_limit_new_sessions_per_ip="100000/minute",
                    rate_limit_contacts_per_ip="100000/minute", log_level="WARNING", **extra,
                )  # fmt: skip

            results = {
                "plain, LLM_TOOLS=off": await measure(
                    settings("off", llm_tools="off"), "What does she do?"
                ),
                "plain, LLM_TOOLS=auto": await measure(settings("auto"), "What does she do?"),
                "contact (tool call)": await measure(
                    settings("tool", notify_webhook_url=hook.url), CONTACT, hook
                ),
            }
            hook.received.clear()
            form = await form_latency(settings("form", notify_webhook_url=hook.url), hook)
            offered = next(r.body["tools"] for r in fake.requests if "tools" in r.body)
    print(f"stand-in pace: first token {FIRST_TOKEN} s, then {TOKEN_DELAY} s per token; "
          f"{len(ANSWER)}-token answers; medians of {TURNS} turns")  # fmt: skip
    for name, figures in results.items():
        print(f"{name:24} " + "  ".join(f"{k} {v:.3g}" for k, v in figures.items()))
    print(f"form sent -> webhook {form[0] * 1000:.1f} ms; lead stored -> webhook "
          f"{form[1] * 1000:.1f} ms")  # fmt: skip
    print("our count (tiktoken) of what offering the tools adds to each request:",
          definition_tokens(offered))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
