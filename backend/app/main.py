"""The composition root: `create_app()` and the lifespan that owns every long-lived resource.

`uv run uvicorn app.main:app` serves the product. Settings are read when the server
starts, not at import time.
"""

import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import admin as admin_api
from app.api import chat, health, widget, ws, ws_docs
from app.api import metrics as metrics_api
from app.api.connections import ConnectionRegistry
from app.api.errors import install_error_handlers
from app.api.request_id import RequestIdMiddleware
from app.api.shutdown import install_graceful_shutdown
from app.core.config import Settings, load_settings
from app.core.errors import StartupError
from app.core.logger import get_logger, setup_logging
from app.db.migrate import upgrade_database
from app.db.session import create_engine, create_session_factory
from app.services.admin import AdminService, Prices
from app.services.client_ip import Network, parse_trusted
from app.services.conversation import Answerers, ConversationService, Limits
from app.services.guards import Budgets
from app.services.live_hub import LiveHub, open_live_hub
from app.services.llm_client import LLMClient, create_http_client
from app.services.metrics import Metrics
from app.services.model_chain import ModelChain
from app.services.rate_limit import RateLimiter
from app.services.recovery import cutoff_seconds, scheduled_recovery
from app.services.resume_context import ResumeContext
from app.services.resume_loader import Resume, load_resume
from app.services.retention import scheduled_retention
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
    engine: AsyncEngine
    service: ConversationService
    limiter: RateLimiter
    metrics: Metrics
    connections: ConnectionRegistry
    live_hub: LiveHub
    trusted_proxies: list[Network]
    admin: AdminService


async def _prepare_database(engine: AsyncEngine, settings: Settings) -> None:
    if not settings.migrate_on_startup:
        return
    try:
        await upgrade_database(engine)
    except (SQLAlchemyError, OSError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise StartupError(f"Cannot prepare the database {where}: {exc}") from exc


def _build_service(
    settings: Settings,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    resume: Resume,
    limiter: RateLimiter,
    metrics: Metrics,
) -> ConversationService:
    counter = TokenCounter(settings.token_encoding)
    answers = Answerers(
        chain=ModelChain(
            LLMClient(http, settings),
            settings.llm_model,
            settings.llm_fallback_models,
            native_routing=settings.provider_routes_fallbacks,
        ),
        model_configured=settings.llm_configured,
        excerpt_passages=settings.excerpt_passages,
    )
    context = ResumeContext.build(resume, counter, excerpts=settings.fallback_mode == "excerpts")
    return ConversationService(
        create_session_factory(engine),
        answers,
        counter,
        context,
        limits=Limits(
            max_message_chars=settings.max_message_chars,
            max_message_tokens=settings.max_message_tokens,
            history_messages=settings.history_messages,
            context_tokens=settings.llm_context_tokens,
            max_answer_tokens=settings.llm_max_tokens,
        ),
        budgets=Budgets.from_settings(settings),
        limiter=limiter,
        metrics=metrics,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[AppState]:
        current = settings or load_settings()
        setup_logging("DEBUG" if current.debug else current.log_level, current.log_format)
        resume = load_resume(current.resume_path, current.resume_max_bytes)
        metrics = Metrics(current.prometheus_multiproc_dir)
        async with contextlib.AsyncExitStack() as stack:
            engine = create_engine(current)
            stack.push_async_callback(engine.dispose)
            await _prepare_database(engine, current)
            limiter = await RateLimiter.create(current, key_prefix=current.rate_limit_key_prefix)
            stack.push_async_callback(limiter.close)
            http = await stack.enter_async_context(create_http_client(current))
            service = _build_service(current, engine, http, resume, limiter, metrics)
            connections = ConnectionRegistry()
            live_hub = await stack.enter_async_context(open_live_hub(current))
            restore = install_graceful_shutdown(
                connections, service, current.shutdown_grace_seconds
            )
            stack.callback(restore)
            sessions = create_session_factory(engine)
            await stack.enter_async_context(
                scheduled_retention(sessions, current.retention_days, current.retention_check_hours)
            )
            cutoff = cutoff_seconds(current.llm_total_timeout, current.shutdown_grace_seconds)
            await stack.enter_async_context(scheduled_recovery(sessions, cutoff))
            _log_ready(current, resume, engine, service, limiter)
            yield AppState(
                settings=current,
                engine=engine,
                service=service,
                limiter=limiter,
                metrics=metrics,
                connections=connections,
                live_hub=live_hub,
                trusted_proxies=parse_trusted(current.trusted_proxies),
                admin=AdminService(sessions, Prices.from_settings(current)),
            )
            await service.drain(current.shutdown_grace_seconds)

    app = FastAPI(
        title="Resume Chatbot",
        version="0.1.0",
        summary="Streamed, persisted chat about one person's resume.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(ws.router)
    app.include_router(ws_docs.router)
    app.include_router(widget.router)
    app.include_router(admin_api.router)
    app.add_middleware(CORSFromSettings)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(StartupErrorReporter)
    return app


def _log_ready(
    settings: Settings,
    resume: Resume,
    engine: AsyncEngine,
    service: ConversationService,
    limiter: RateLimiter,
) -> None:
    logger.info(
        "ready: resume of %s (%s, %d tokens with the system prompt), model %s%s, "
        "database %s, limits in %s",
        resume.owner_name,
        resume.format,
        service.context.system_tokens,
        settings.llm_model,
        "" if settings.llm_configured else f" (NO KEY: answering in {settings.answer_mode} mode)",
        engine.url.render_as_string(hide_password=True),
        limiter.storage_name,
    )
    if "*" in settings.allowed_origins:
        logger.warning("ALLOWED_ORIGINS is *: any website may embed this chat; set your own")


class CORSFromSettings:
    """CORS for the REST routes from ALLOWED_ORIGINS, read when the app starts, not at import."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._cors is None:
            settings: Settings = scope["state"]["settings"]
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=settings.allowed_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type"],
                max_age=600,
            )
        await self._cors(scope, receive, send)


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
