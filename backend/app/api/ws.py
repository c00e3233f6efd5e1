"""The chat socket at /ws. The protocol's types live in `app.models.websocket`."""

import asyncio
import contextlib
import json
import math

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketState

from app.api.deps import (
    ClientDep,
    ConnectionsDep,
    LimiterDep,
    MetricsDep,
    ServiceDep,
    SettingsDep,
)
from app.api.errors import error_body, error_frame
from app.core.config import Settings
from app.core.errors import (
    AppError,
    BusyError,
    InvalidMessageError,
    MessageTooLongError,
    SessionNotFoundError,
)
from app.core.logger import get_logger, session_id_var
from app.models.websocket import (
    CancelFrame,
    ClientFrame,
    DoneData,
    DoneEvent,
    MessageFrame,
    PingFrame,
    PongEvent,
    ServerEvent,
    SessionData,
    SessionEvent,
    client_frame_adapter,
)
from app.services.conversation import ConversationService
from app.services.turns import ActiveTurn, ChatSession, Client

router = APIRouter()
logger = get_logger(__name__)

_PONG = PongEvent().model_dump_json()
NORMAL_CLOSURE, GOING_AWAY, POLICY_VIOLATION, TRY_AGAIN_LATER = 1000, 1001, 1008, 1013


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

    async def event(self, event: ServerEvent) -> None:
        await self.send(event.model_dump_json())

    async def chunk(self, text: str) -> None:
        await self.send(json.dumps({"type": "chunk", "data": text}))

    async def done(self, data: DoneData) -> None:
        await self.event(DoneEvent(data=data))

    async def error(self, error: AppError) -> None:
        await self.send(error_frame(error))


@router.websocket("/ws")
async def chat_socket(
    websocket: WebSocket,
    service: ServiceDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    metrics: MetricsDep,
    connections: ConnectionsDep,
    client: ClientDep,
    session_id: str | None = None,
) -> None:
    if not origin_allowed(websocket.headers.get("origin"), settings.allowed_origins):
        metrics.refused("origin_refused")
        await websocket.close(POLICY_VIOLATION, "origin not allowed")  # before accept: HTTP 403
        return
    if connections.draining:  # accepted first so the client sees 1001 and reconnects elsewhere
        await websocket.accept()
        await websocket.close(GOING_AWAY, "server shutting down")
        return
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(limiter.connection(client.ip))
        except AppError as error:
            metrics.refused("connection_limit")
            await _deny(websocket, error)
            return
        await websocket.accept()
        stack.enter_context(connections.track(websocket))
        metrics.connection_opened()
        stack.callback(metrics.connection_closed)
        await _converse(websocket, service, settings, client, session_id)


async def _converse(
    websocket: WebSocket,
    service: ConversationService,
    settings: Settings,
    client: Client,
    session_id: str | None,
) -> None:
    sink = SocketSink(websocket)
    try:
        opened = await service.open_session(session_id)
    except AppError as error:
        await sink.error(error)
        await websocket.close(TRY_AGAIN_LATER, "storage unavailable")
        return
    session_id_var.set(str(opened.session.id))
    if opened.not_found:
        await sink.error(SessionNotFoundError())
    data = SessionData(session_id=opened.session.id, resumed=opened.resumed, history=opened.history)
    await sink.event(SessionEvent(data=data))
    try:
        await _serve(websocket, sink, service, settings, opened.session, client)
    finally:
        sink.open = False


async def _serve(
    websocket: WebSocket,
    sink: SocketSink,
    service: ConversationService,
    settings: Settings,
    chat: ChatSession,
    client: Client,
) -> None:
    turn: ActiveTurn | None = None
    while True:
        raw = await _receive(websocket, settings.ws_idle_timeout, turn)
        if raw is None:
            return
        try:
            frame = _parse(raw, settings.ws_max_frame_bytes)
        except AppError as error:
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
                    turn = service.start_turn(chat, question, client, sink)
                except AppError as error:
                    await sink.error(error)


async def _receive(
    websocket: WebSocket, idle_seconds: float, turn: ActiveTurn | None
) -> str | bytes | None:
    """The next frame; None once the client has gone or was closed for idling."""
    while websocket.client_state is WebSocketState.CONNECTED:
        try:
            async with asyncio.timeout(idle_seconds):
                message = await websocket.receive()
        except TimeoutError:
            if turn is not None and not turn.done():
                continue  # an answer is still streaming: the visitor is waiting, not idle
            await websocket.close(NORMAL_CLOSURE, "idle timeout")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""
    return None


def _parse(raw: str | bytes, max_bytes: int) -> ClientFrame:
    if isinstance(raw, bytes):
        raise InvalidMessageError("Frames must be JSON text, not binary.")
    if len(raw) * 4 > max_bytes and len(raw.encode()) > max_bytes:
        raise MessageTooLongError(f"Frames are limited to {max_bytes} bytes.")
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


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Browsers always send Origin; other clients (curl, scripts) may not and are let in."""
    if origin is None or "*" in allowed:
        return True
    return origin.rstrip("/").lower() in {entry.rstrip("/").lower() for entry in allowed}


async def _deny(websocket: WebSocket, error: AppError) -> None:
    """Refuse at the handshake with HTTP 429 where the server can, else close 1008."""
    headers = {"Retry-After": str(math.ceil(error.retry_after))} if error.retry_after else {}
    body = error_body(error)
    try:
        await websocket.send_denial_response(
            JSONResponse(body, status_code=error.status_code, headers=headers)
        )
    except RuntimeError:
        await websocket.close(POLICY_VIOLATION, error.message[:120])
