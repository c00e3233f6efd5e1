"""The composition root: `create_app()` and the lifespan that owns every long-lived resource.

`uv run uvicorn app.main:app` serves the product. Settings are read when the server
starts, not at import time.
"""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import health, ws
from app.api.errors import install_error_handlers
from app.core.config import Settings, load_settings
from app.core.errors import StartupError
from app.core.logger import get_logger, setup_logging
from app.db.migrate import upgrade_database
from app.db.session import create_engine, create_session_factory
from app.services.conversation import ConversationService
from app.services.llm_client import LLMClient, create_http_client
from app.services.prompts import system_prompt
from app.services.resume_loader import Resume, load_resume
from app.services.tokens import TokenCounter

logger = get_logger(__name__)

DESCRIPTION = """\
Ask questions about one person's resume and get streamed answers from an LLM that has
the whole resume in its context. Conversations are stored and can be resumed.

Chat over the WebSocket at **`/ws`** (optionally `/ws?session_id=<uuid>` to resume):
send `{"type": "message", "data": "What does she do?"}` and receive `chunk` frames, then
one `done` (or an `error` with a stable `code`). See the README for the full protocol.
"""


class AppState(TypedDict):
    settings: Settings
    resume: Resume
    engine: AsyncEngine
    service: ConversationService


async def _prepare_database(engine: AsyncEngine, settings: Settings) -> None:
    if not settings.migrate_on_startup:
        return
    try:
        await upgrade_database(engine)
    except (SQLAlchemyError, OSError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise StartupError(f"Cannot prepare the database {where}: {exc}") from exc


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[AppState]:
        current = settings or load_settings()
        setup_logging("DEBUG" if current.debug else current.log_level)
        resume = load_resume(current.resume_path, current.resume_max_bytes)
        engine = create_engine(current)
        try:
            await _prepare_database(engine, current)
            async with create_http_client(current) as http:
                service = ConversationService(
                    create_session_factory(engine),
                    LLMClient(http, current),
                    TokenCounter(),
                    system_prompt(resume.owner_name, resume.text),
                    max_message_chars=current.max_message_chars,
                    history_messages=current.history_messages,
                )
                logger.info(
                    "ready: resume of %s (%s, %d chars), model %s%s, database %s",
                    resume.owner_name,
                    resume.format,
                    len(resume.text),
                    current.llm_model,
                    "" if current.llm_configured else " (NOT CONFIGURED: set OPENROUTER_API_KEY)",
                    engine.url.render_as_string(hide_password=True),
                )
                yield AppState(settings=current, resume=resume, engine=engine, service=service)
                await service.drain(current.shutdown_grace_seconds)
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Resume Chatbot",
        version="0.1.0",
        summary="Streamed, persisted chat about one person's resume.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(ws.router)
    app.add_middleware(StartupErrorReporter)
    return app


class StartupErrorReporter:
    """Reports a `StartupError` as its one-line message instead of a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_brief(message: Message) -> None:
            error = sys.exception()
            if message["type"] == "lifespan.startup.failed" and isinstance(error, StartupError):
                message = {**message, "message": f"Cannot start: {error.message}"}
            await send(message)

        await self.app(scope, receive, send_brief)


app = create_app()
