"""Visitor REST routes: ask (whole answer or Server-Sent Events), read history, profile.

They go through the same `ConversationService.start_turn` as the WebSocket, so the
same limits, budgets and storage apply.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from app.api.deps import ClientDep, ServiceDep, SettingsDep
from app.api.errors import ERROR_RESPONSES, error_frame
from app.chat.protocol import DoneData, DoneEvent
from app.chat.schemas import ChatRequest, ChatResponse, Profile, SessionHistory
from app.chat.service import ConversationService
from app.chat.turns import ChatSession
from app.core.errors import AppError, SessionNotFoundError
from app.core.logger import session_id_var
from app.resume.profile import greeting, starter_questions

router = APIRouter(prefix="/api", tags=["chat"])

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

type TurnEvent = str | DoneData | AppError


class QueueSink:
    """Collects a turn's events for one HTTP request.

    `next` gives the chunks that came since it last gave any as one text, then the end
    (the turn writes its chunks paced already: app/llm/pacing.py).
    """

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._end: DoneData | AppError | None = None
        self._changed = asyncio.Event()

    async def chunk(self, text: str) -> None:
        self._texts.append(text)
        self._changed.set()

    async def done(self, data: DoneData) -> None:
        self._finish(data)

    async def error(self, error: AppError) -> None:
        self._finish(error)

    def _finish(self, end: DoneData | AppError) -> None:
        if self._end is None:
            self._end = end
            self._changed.set()

    async def next(self) -> TurnEvent:
        while not self._texts and self._end is None:
            self._changed.clear()
            await self._changed.wait()
        if self._texts:
            text = "".join(self._texts)
            self._texts.clear()
            return text
        assert self._end is not None
        return self._end


@router.post(
    "/chat",
    summary="Ask a question",
    response_model=ChatResponse,
    responses={
        200: {
            "description": "The whole answer as JSON, or with `stream` (or `Accept: "
            "text/event-stream`) Server-Sent Events: `session`, then `chunk`s, then one "
            "`done` or `error`, each `data` the same JSON as the WebSocket's frames.",
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "description": "One event; its data is a frame as on the WebSocket.",
                        "properties": {
                            "event": {"enum": ["session", "chunk", "done", "error"]},
                            "data": {"type": "string", "contentMediaType": "application/json"},
                        },
                        "required": ["event", "data"],
                    }
                }
            },
        },
        **ERROR_RESPONSES,
    },
)
async def ask(
    body: ChatRequest,
    service: ServiceDep,
    client: ClientDep,
    accept: Annotated[str, Header()] = "",
) -> Any:
    chat = await _session(service, body.session_id)
    session_id_var.set(str(chat.id))
    sink = QueueSink()
    service.start_turn(chat, body.message, client, sink)
    first = await sink.next()
    if isinstance(first, AppError):
        raise first
    if body.stream or "text/event-stream" in accept:
        return StreamingResponse(
            _sse(chat, first, sink), media_type="text/event-stream", headers=_SSE_HEADERS
        )
    event: TurnEvent = first
    while isinstance(event, str):
        event = await sink.next()
    if isinstance(event, AppError):
        raise event
    return ChatResponse(
        session_id=chat.id,
        answer=event.content,
        finish_reason=event.finish_reason,
        usage=event.usage,
        model=event.model,
        source=event.source,
    )


@router.get(
    "/sessions/{session_id}/messages",
    summary="Read a conversation's history",
    response_model=SessionHistory,
    responses=ERROR_RESPONSES,
)
async def history(session_id: uuid.UUID, service: ServiceDep) -> SessionHistory:
    opened = await service.open_session(str(session_id))
    if not opened.resumed:
        raise SessionNotFoundError("No conversation has that session id.")
    return SessionHistory(session_id=session_id, messages=opened.history)


@router.get("/profile", summary="Who the chat is about, a greeting and starter questions")
async def profile(service: ServiceDep, settings: SettingsDep) -> Profile:
    resume = service.resume
    return Profile(
        name=resume.owner_name,
        headline=resume.headline,
        greeting=greeting(resume, settings.greeting),
        suggested_questions=starter_questions(resume, settings.starter_questions),
        mode=settings.answer_mode,
    )


async def _session(service: ConversationService, session_id: uuid.UUID | None) -> ChatSession:
    opened = await service.open_session(str(session_id) if session_id else None)
    if opened.not_found:
        raise SessionNotFoundError("No conversation has that session id; omit it to start one.")
    return opened.session


async def _sse(chat: ChatSession, first: TurnEvent, sink: QueueSink) -> AsyncIterator[str]:
    yield _event("session", json.dumps({"type": "session", "data": {"session_id": str(chat.id)}}))
    event = first
    while True:
        if isinstance(event, str):
            yield _event("chunk", json.dumps({"type": "chunk", "data": event}))
        elif isinstance(event, DoneData):
            yield _event("done", DoneEvent(data=event).model_dump_json())
            return
        else:
            yield _event("error", error_frame(event))
            return
        event = await sink.next()


def _event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"
