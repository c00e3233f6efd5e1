"""Run the evaluation: the app itself on a loopback port, asked over its REST route.

The app is built by `create_app` from the owner's settings, so answers go through the same
prompt, history, limits and leak guard as a visitor's. Only what would get in the way of
a test run changes: a throwaway SQLite database, no Redis, no rate limits or budgets, no
notifications to the owner, and no answers from the resume's excerpts when the model fails
(a failure is a failure).
"""

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from app.chat.leak_guard import LeakPatterns, process_canary
from app.chat.prompts import instructions, system_prompt
from app.core.config import Settings
from app.core.errors import StartupError
from app.core.serving import ServerStartError, serve
from app.evaluation.grading import Answered, Grader
from app.evaluation.judge import Judge
from app.evaluation.questions import Question, build_questions
from app.evaluation.report import Graded, Report, Thresholds
from app.llm.client import LLMClient, create_http_client
from app.main import create_app
from app.resume.loader import Resume, load_resume

NO_LIMIT = "1000000/minute"


@dataclass(frozen=True, slots=True)
class EvalOptions:
    json_path: Path | None = None
    markdown_path: Path | None = None
    min_pass_rate: float = 0.85
    min_category_rate: float = 0.6
    judge_model: str | None = None  # default EVAL_JUDGE_MODEL; "" for none
    resume_path: Path | None = None  # default RESUME_PATH
    concurrency: int = 4


def run_eval(settings: Settings, options: EvalOptions, out: TextIO = sys.stdout) -> int:
    """`resume-chat eval`: 0 at or above the thresholds, 1 below, 2 when it cannot run."""
    if not settings.llm_configured:
        print(
            "Error: no model is configured (set OPENROUTER_API_KEY, or OPENROUTER_BASE_URL "
            "for a local OpenAI-compatible server); the evaluation asks the model.",
            file=sys.stderr,
        )
        return 2
    if problem := _unwritable(options):
        print(f"Error: {problem}", file=sys.stderr)
        return 2
    report = asyncio.run(evaluate(settings, options))
    out.write(report.scorecard())
    if options.json_path is not None:
        options.json_path.write_text(report.json_text(), encoding="utf-8")
    if options.markdown_path is not None:
        options.markdown_path.write_text(report.markdown(), encoding="utf-8")
    return 0 if report.ok else 1


def _unwritable(options: EvalOptions) -> str | None:
    """Why a report could not be written, found before any question is asked."""
    for kind, path in (("JSON", options.json_path), ("Markdown", options.markdown_path)):
        if path is None:
            continue
        if path.is_dir():
            return f"cannot write the {kind} report to {path}: it is a folder."
        if not path.parent.is_dir():
            return f"cannot write the {kind} report to {path}: {path.parent} is not a folder."
    return None


async def evaluate(settings: Settings, options: EvalOptions) -> Report:
    resume_path = options.resume_path or settings.resume_path
    resume = load_resume(resume_path, settings.resume_max_bytes)
    questions = build_questions(resume)
    judge_model = settings.eval_judge_model if options.judge_model is None else options.judge_model
    with tempfile.TemporaryDirectory(prefix="resume-chat-eval-") as scratch:
        local = _eval_settings(settings, resume_path, Path(scratch))
        async with _served(local) as base_url, create_http_client(local) as http:
            answers = await _ask_all(base_url, questions, options.concurrency, settings)
            judge = Judge(LLMClient(http, local), judge_model, resume.owner_name, resume.text)
            tools = local.llm_tools == "auto"  # as create_app decides
            graded = await _grade(
                resume, questions, answers, judge if judge_model else None, tools=tools
            )
    thresholds = Thresholds(options.min_pass_rate, options.min_category_rate)
    shown = str(resume_path)
    return Report(
        resume.owner_name, shown, settings.llm_model, judge_model or None, graded, thresholds
    )


def _eval_settings(settings: Settings, resume_path: Path, scratch: Path) -> Settings:
    return settings.model_copy(
        update={
            "resume_path": resume_path,
            "database_url": f"sqlite+aiosqlite:///{scratch / 'eval.db'}",
            "migrate_on_startup": True,
            "redis_url": None,
            "rate_limit_questions_per_ip": NO_LIMIT,
            "rate_limit_questions_per_session": NO_LIMIT,
            "rate_limit_new_sessions_per_ip": NO_LIMIT,
            "budget_tokens_per_session": 0,
            "budget_tokens_per_ip_per_day": 0,
            "budget_tokens_per_day": 0,
            "retention_days": 0,
            "fallback_mode": "error",
            "notify_webhook_url": None,  # a lead a model records in a test run is no lead
            "notify_email_to": [],
            "allowed_origins": ["http://127.0.0.1"],  # no browser comes near it
            "prometheus_multiproc_dir": None,
            "log_level": "WARNING" if not settings.debug else "DEBUG",
        }
    )


@asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[str]:
    """The app on a free loopback port until the block ends; yields its base URL."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            port = await stack.enter_async_context(serve(create_app(settings)))
        except ServerStartError:
            raise StartupError("The app failed to start; see the log above.") from None
        yield f"http://127.0.0.1:{port}"


async def _ask_all(
    base_url: str, questions: list[Question], concurrency: int, settings: Settings
) -> list[Answered]:
    slots = asyncio.Semaphore(max(1, concurrency))
    timeout = httpx.Timeout(settings.llm_total_timeout + 30, connect=10)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as http:

        async def ask(question: Question) -> Answered:
            async with slots:
                return await _converse(http, question)

        return list(await asyncio.gather(*(ask(q) for q in questions)))


async def _converse(http: httpx.AsyncClient, question: Question) -> Answered:
    """Ask each turn in one conversation, as a visitor would; the last answer counts."""
    session: str | None = None
    answered = Answered("", None, "no_turns")
    for turn in question.turns:
        body = {"message": turn} | ({"session_id": session} if session else {})
        response = await http.post("/api/chat", json=body)
        data = response.json()
        if response.status_code != 200:
            return Answered("", None, data.get("error", {}).get("code", str(response.status_code)))
        session = data["session_id"]
        answered = Answered(data["answer"], data["finish_reason"])
    return answered


async def _grade(
    resume: Resume,
    questions: list[Question],
    answers: list[Answered],
    judge: Judge | None,
    *,
    tools: bool,
) -> list[Graded]:
    """`tools`: the app's prompt carries the tools' guidance, so it must not leak either."""
    prompt = system_prompt(resume.owner_name, resume.text, process_canary(), tools=tools)
    grader = Grader(
        resume.text, resume.owner_name, LeakPatterns(process_canary(), instructions(prompt))
    )
    graded = []
    for question, answer in zip(questions, answers, strict=True):
        verdict = grader.grade(question, answer)
        if judge is not None:
            verdict = await judge.review(question, answer, verdict)
        graded.append(Graded(question, answer, verdict))
    return graded
