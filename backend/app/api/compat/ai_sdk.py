"""`useChat` (the Vercel AI SDK) talks to `/api/ui/chat`: ask, and re-attach to an answer.

A chat id maps to one stored conversation: `uuid5(NAMESPACE, id)`. The id is never
stored and cannot be read back from the session id; whoever holds it continues the
conversation, as whoever holds a socket's session id does, so ids must be unguessable
(see `CHAT_ID_PATTERN`). Derived ids never collide with the socket's random ones.

A turn is kept in the live hub like a socket's, so `GET /api/ui/chat/{id}/stream`
replays it from its start on any instance. When nobody follows it any more (the request
was aborted, or the page closed), it keeps going for `UI_CHAT_RESUME_SECONDS` in case the
page reloads and re-attaches, then it is stopped and stored like a cancelled answer.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response, StreamingResponse

from app.api.compat.ui_stream import (
    CHAT_ID_PATTERN,
    HEADERS,
    SSE_EVENT,
    UIChatRequest,
    refusal,
    ui_parts,
)
from app.api.deps import ClientDep, LiveHubDep, ServiceDep, SettingsDep
from app.api.errors import ERROR_RESPONSES
from app.api.socket.delivery import start_live_turn
from app.chat.service import ConversationService
from app.chat.turns import ActiveTurn, ChatSession, Client
from app.core.errors import AppError, BusyError
from app.core.logger import session_id_var
from app.core.tasks import running_in_background
from app.live.answer import LiveAnswer
from app.live.hub import LiveHub, Streaming

router = APIRouter(prefix="/api/ui", tags=["ai-sdk"])

# Fixed for good: changing it would orphan every conversation started through the AI SDK.
NAMESPACE = uuid.UUID("5b0b8f52-6d0e-4f55-9a43-2f0c6c2b7e11")
_POLL_SECONDS = 0.25  # how often an unfollowed answer checks whether someone came back
_HOLD_SECONDS = 3.0  # how long another instance's "I follow it" lasts unless renewed

_STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The UI message stream (Server-Sent Events, header "
        "`x-vercel-ai-ui-message-stream: v1`): `start`, `text-start`, `text-delta`s, "
        "`text-end`, then `finish`, or `error` and `finish`; then `[DONE]`. A refused "
        "question (rate limit, budget, too long, busy) is an `error` part, whose `errorText` "
        "useChat shows as `error.message`.",
        "content": {"text/event-stream": {"schema": SSE_EVENT}},
    }
}
ChatId = Annotated[str, Path(pattern=CHAT_ID_PATTERN, description="The chat id useChat sent.")]


def session_for(chat_id: str) -> uuid.UUID:
    """The stored conversation of an AI SDK chat id."""
    return uuid.uuid5(NAMESPACE, chat_id)


@router.post(
    "/chat",
    summary="Ask, as the AI SDK's useChat does (UI message stream)",
    response_class=StreamingResponse,
    responses={**_STREAM_RESPONSE, 400: ERROR_RESPONSES[400], 422: ERROR_RESPONSES[422]},
)
async def ui_chat(
    body: UIChatRequest,
    service: ServiceDep,
    hub: LiveHubDep,
    client: ClientDep,
    settings: SettingsDep,
) -> StreamingResponse:
    session_id = session_for(body.id)
    session_id_var.set(str(session_id))
    try:
        turn, answer = await _start(service, hub, session_id, body.question(), client)
    except AppError as error:
        return _stream(refusal(error))
    grace = settings.ui_chat_resume_seconds
    abandoned = _stop_when_abandoned(hub, session_id, answer, grace, turn.cancel)
    watchdog = asyncio.create_task(abandoned, name="ui-chat-watchdog")
    assert turn.task is not None
    turn.task.add_done_callback(lambda _task: watchdog.cancel())
    answer.watchers += 1  # this request, until its stream ends
    return _stream(ui_parts(_watched(answer, answer.follow())))


@router.get(
    "/chat/{chat_id}/stream",
    summary="Re-attach to the answer being written (useChat's resume)",
    response_class=StreamingResponse,
    responses={
        **_STREAM_RESPONSE,
        204: {"description": "No answer is being written for this chat."},
        422: ERROR_RESPONSES[422],
    },
)
async def ui_chat_stream(chat_id: ChatId, hub: LiveHubDep) -> Response:
    session_id = session_for(chat_id)
    streaming = await _streaming(hub, session_id)
    if streaming is None:
        return Response(status_code=204)
    if isinstance(streaming, LiveAnswer):
        streaming.watchers += 1
        return _stream(ui_parts(_watched(streaming, streaming.follow())))
    return _stream(ui_parts(_held(hub, session_id, hub.follow(streaming))))


def _stream(parts: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(parts, media_type="text/event-stream", headers=HEADERS)


async def _start(
    service: ConversationService,
    hub: LiveHub,
    session_id: uuid.UUID,
    question: str,
    client: Client,
) -> tuple[ActiveTurn, LiveAnswer]:
    """Start a turn kept in the live hub, as the socket does; `busy` while one streams."""
    if await _streaming(hub, session_id) is not None:
        raise BusyError()
    opened = await service.open_session(str(session_id))
    local = hub.local(session_id)
    if local is not None and not local.final:  # another request started one meanwhile
        raise BusyError()
    chat = ChatSession(session_id, stored=opened.resumed)
    return start_live_turn(service, hub, chat, question, client)


async def _streaming(hub: LiveHub, session_id: uuid.UUID) -> Streaming | None:
    """The answer being written for `session_id`; one whose end was written is done."""
    streaming = await hub.find(session_id)
    if isinstance(streaming, LiveAnswer) and streaming.final:
        return None  # its turn is only storing and tidying up
    return streaming


async def _watched(
    answer: LiveAnswer, frames: AsyncIterator[list[str]]
) -> AsyncIterator[list[str]]:
    """`frames`; the caller counted a watcher of `answer`, and it ends with the stream."""
    try:
        async for batch in frames:
            yield batch
    finally:
        answer.watchers -= 1


async def _held(
    hub: LiveHub, session_id: uuid.UUID, frames: AsyncIterator[list[str]]
) -> AsyncIterator[list[str]]:
    """`frames` of an answer on another instance, telling it through Redis that we follow."""

    async def keep_holding() -> None:
        while True:
            await hub.hold(session_id, _HOLD_SECONDS)
            await asyncio.sleep(_HOLD_SECONDS / 3)

    async with running_in_background(keep_holding(), name="ui-chat-hold"):
        async for batch in frames:
            yield batch


async def _stop_when_abandoned(
    hub: LiveHub,
    session_id: uuid.UUID,
    answer: LiveAnswer,
    grace: float,
    cancel: Callable[[], None],
) -> None:
    """Cancel the turn once nobody, here or on another instance, followed it for `grace` s."""
    loop = asyncio.get_running_loop()
    alone_since: float | None = None
    while not answer.final:
        await asyncio.sleep(_POLL_SECONDS)
        if answer.watchers > 0 or await hub.held(session_id):
            alone_since = None
            continue
        if alone_since is None:
            alone_since = loop.time()
        if loop.time() - alone_since >= grace:
            cancel()
            return
