"""The composition root: `create_app()` and the lifespan that owns every long-lived resource.

`uv run resume-chat serve` serves the product (`app.server`). Settings are read when the server
starts, not at import time.
"""

import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import httpx
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin import page as admin_page
from app.admin import routes as admin_routes
from app.admin.service import AdminService, Prices
from app.api import chat, health, widget
from app.api import metrics as metrics_api
from app.api.compat import ai_sdk, openai_chat
from app.api.docs import install_docs
from app.api.errors import install_error_handlers
from app.api.middleware import (
    BodyLimit,
    CORSFromSettings,
    RequestIdMiddleware,
    StartupErrorReporter,
)
from app.api.shutdown import install_graceful_shutdown
from app.api.socket import docs as ws_docs
from app.api.socket import routes as ws
from app.api.socket.connections import ConnectionRegistry
from app.chat.budgets import Budgets
from app.chat.service import Answerers, ConversationService, Limits
from app.chat.spool import AnswerSpool
from app.chat.tools import ToolBox, ToolLoop
from app.core.config import Settings, load_settings
from app.core.errors import StartupError
from app.core.logger import get_logger, setup_logging
from app.core.metrics import Metrics
from app.core.redact import redact
from app.db.engine import create_engine, make_database
from app.db.migrate import upgrade_database
from app.leads import routes as leads_routes
from app.leads.digest import scheduled_digest
from app.leads.service import LeadService
from app.leads.tools import lead_tools
from app.limits.client_ip import Network, parse_trusted
from app.limits.limiter import RateLimiter
from app.live.hub import LiveHub, open_live_hub
from app.llm.chain import ModelChain
from app.llm.client import LLMClient, create_http_client
from app.llm.tokens import TokenCounter
from app.notify.sender import Outbox, OutboxSender, channels_from_settings, sending
from app.resume.context import ResumeContext
from app.resume.loader import Resume, load_resume
from app.upkeep.recovery import cutoff_seconds, scheduled_recovery
from app.upkeep.retention import scheduled_retention

logger = get_logger(__name__)

DESCRIPTION = """\
Ask questions about one person's resume and get streamed answers from an LLM that has
the whole resume in its context. Conversations are stored and can be resumed.

Chat over the WebSocket at **`/ws`** (optionally `/ws?session_id=<uuid>` to resume):
send `{"type": "message", "data": "What does she do?"}` and receive `chunk` frames, then
one `done` (or an `error` with a stable `code`). docs/websocket.md has the full protocol.
Front ends built on the Vercel AI SDK (`useChat`) use **`/api/ui/chat`**; OpenAI clients
use **`/v1`** (docs/integrations.md).
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
    leads: LeadService


async def _prepare_database(engine: AsyncEngine, settings: Settings) -> None:
    if not settings.migrate_on_startup:
        return
    try:
        await upgrade_database(engine)
    except (SQLAlchemyError, OSError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise StartupError(f"Cannot prepare the database {where}: {redact(str(exc))}") from exc


def _build_service(
    settings: Settings,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    resume: Resume,
    limiter: RateLimiter,
    metrics: Metrics,
    leads: LeadService,
    spool: AnswerSpool,
) -> ConversationService:
    counter = TokenCounter(settings.token_encoding)
    chain = ModelChain(
        LLMClient(http, settings),
        settings.llm_model,
        settings.llm_fallback_models,
        native_routing=settings.provider_routes_fallbacks,
    )
    toolbox = ToolBox(lead_tools(leads)) if settings.llm_tools == "auto" else None
    answers = Answerers(
        chain=chain,
        model_configured=settings.llm_configured,
        excerpt_passages=settings.excerpt_passages,
        tools=ToolLoop(chain, toolbox, counter) if toolbox else None,
        gaps=leads,
    )
    context = ResumeContext.build(
        resume,
        counter,
        excerpts=settings.fallback_mode == "excerpts",
        tools=toolbox.definitions if toolbox else (),
    )
    return ConversationService(
        make_database(engine),
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
        spool=spool,
        store_retry_seconds=settings.answer_store_retry_seconds,
        chunk_interval=settings.stream_chunk_interval,
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
            limiter = await RateLimiter.create(current, key_prefix=current.redis_key_prefix)
            stack.push_async_callback(limiter.close)
            http = await stack.enter_async_context(create_http_client(current))
            channels = channels_from_settings(current, http)
            outbox = Outbox(list(channels)) if channels else None
            leads = LeadService(
                make_database(engine), limiter, metrics, outbox, current.public_base_url
            )
            spool = AnswerSpool(current.answer_spool_path)
            service = _build_service(current, engine, http, resume, limiter, metrics, leads, spool)
            if outbox is not None:
                sender = OutboxSender(make_database(engine), outbox, channels, current, metrics)
                await stack.enter_async_context(sending(sender))
            await stack.enter_async_context(
                scheduled_digest(make_database(engine), outbox, current.notify_gaps_digest_hour)
            )
            connections = ConnectionRegistry()
            live_hub = await stack.enter_async_context(open_live_hub(current))
            restore = install_graceful_shutdown(
                connections, service, current.shutdown_grace_seconds
            )
            stack.callback(restore)
            database = make_database(engine)
            await stack.enter_async_context(
                scheduled_retention(database, current.retention_days, current.retention_check_hours)
            )
            cutoff = cutoff_seconds(
                current.llm_total_timeout,
                current.shutdown_grace_seconds,
                current.answer_store_retry_seconds,
            )
            await stack.enter_async_context(scheduled_recovery(database, cutoff, spool))
            _log_ready(current, resume, engine, service, limiter)
            if current.gc_freeze:
                # What start-up made (modules, models, routes, the resume: some 150,000
                # objects) lives as long as the process: the collector's full passes leave
                # it alone instead of walking it for some 60 ms, every stream stalled.
                gc.freeze()
            yield AppState(
                settings=current,
                engine=engine,
                service=service,
                limiter=limiter,
                metrics=metrics,
                connections=connections,
                live_hub=live_hub,
                trusted_proxies=parse_trusted(current.trusted_proxies),
                admin=AdminService(database, Prices.from_settings(current)),
                leads=leads,
            )
            await service.drain(current.shutdown_grace_seconds)

    app = FastAPI(
        title="Resume Chatbot",
        version="0.1.0",
        summary="Streamed, persisted chat about one person's resume.",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=None,  # app.api.docs serves /openapi.json, /docs and /redoc (no CDN)
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(chat.router)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(ws.router)
    app.include_router(ws_docs.router)
    app.include_router(widget.router)
    app.include_router(admin_routes.router)
    app.include_router(admin_page.router)
    app.include_router(leads_routes.router)
    app.include_router(leads_routes.admin_router)
    app.include_router(ai_sdk.router)
    app.include_router(openai_chat.router)
    install_docs(app)
    app.add_middleware(BodyLimit)
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


app = create_app()
