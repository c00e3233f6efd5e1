"""The chat socket at /ws. The protocol's types live in `app.models.websocket`."""

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketState

from app.api.deps import ServiceDep
from app.api.errors import error_event
from app.core.errors import AppError, BusyError, InvalidMessageError, SessionNotFoundError
from app.core.logger import get_logger, session_id_var
from app.models.websocket import (
    CancelFrame,
    ClientFrame,
    DoneData,
    DoneEvent,
    MessageFrame,
    PingFrame,
    PongEvent,
    SessionData,
    SessionEvent,
    client_frame_adapter,
)
from app.services.conversation import ActiveTurn, ChatSession, ConversationService

router = APIRouter()
logger = get_logger(__name__)

_PONG = PongEvent().model_dump_json()
_TRY_AGAIN_LATER = 1013


class SocketSink:
    """Sends a turn's events to one socket; once the visitor has gone it drops them."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self.open = True

    async def send(self, frame: str) -> None:
        if not self.open:
            return
        try:
            await self._websocket.send_text(frame)
        except Exception:  # the client went away; the turn carries on without it
            self.open = False

    async def event(self, event: BaseModel) -> None:
        await self.send(event.model_dump_json())

    async def chunk(self, text: str) -> None:
        await self.send(json.dumps({"type": "chunk", "data": text}))

    async def done(self, data: DoneData) -> None:
        await self.event(DoneEvent(data=data))

    async def error(self, error: AppError) -> None:
        await self.event(error_event(error))


@router.websocket("/ws")
async def chat_socket(
    websocket: WebSocket, service: ServiceDep, session_id: str | None = None
) -> None:
    await websocket.accept()
    sink = SocketSink(websocket)
    try:
        opened = await service.open_session(session_id)
    except AppError as error:
        await sink.error(error)
        await websocket.close(_TRY_AGAIN_LATER, "storage unavailable")
        return
    session_id_var.set(str(opened.session.id))
    if opened.not_found:
        await sink.error(SessionNotFoundError())
    data = SessionData(session_id=opened.session.id, resumed=opened.resumed, history=opened.history)
    await sink.event(SessionEvent(data=data))
    try:
        await _serve(websocket, sink, service, opened.session)
    finally:
        sink.open = False


async def _serve(
    websocket: WebSocket, sink: SocketSink, service: ConversationService, chat: ChatSession
) -> None:
    turn: ActiveTurn | None = None
    async for raw in _frames(websocket):
        try:
            frame = _parse(raw)
        except InvalidMessageError as error:
            await sink.error(error)
            continue
        match frame:
            case PingFrame():
                await sink.send(_PONG)
            case CancelFrame():
                if turn is not None and not turn.done():
                    turn.cancel()
            case MessageFrame(data=question):
                if turn is not None and not turn.done():
                    await sink.error(BusyError())
                    continue
                try:
                    turn = service.start_turn(chat, question, sink)
                except AppError as error:
                    await sink.error(error)


async def _frames(websocket: WebSocket) -> AsyncIterator[str | bytes]:
    """Text and binary frames until the client disconnects."""
    while websocket.client_state is WebSocketState.CONNECTED:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        yield text if text is not None else message.get("bytes") or b""


def _parse(raw: str | bytes) -> ClientFrame:
    if isinstance(raw, bytes):
        raise InvalidMessageError("Frames must be JSON text, not binary.")
    try:
        return client_frame_adapter.validate_json(raw)
    except ValidationError as exc:
        raise InvalidMessageError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return "That frame is not valid JSON."
    if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return 'Unknown frame type; send {"type": "message", "data": "<question>"}, cancel or ping.'
    where = ".".join(str(part) for part in first["loc"][1:]) or "frame"
    return f"Invalid frame ({where}: {first['msg']})."
