"""The chat socket at /ws. The protocol's types live in `app.chat.protocol`."""

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketState

from app.api.deps import (
    ClientDep,
    ConnectionsDep,
    LimiterDep,
    LiveHubDep,
    MetricsDep,
    ServiceDep,
    SettingsDep,
)
from app.api.errors import error_body, error_frame
from app.api.socket.delivery import SocketSender, start_live_turn
from app.chat.protocol import (
    CancelFrame,
    ClientFrame,
    HistoryItem,
    MessageFrame,
    PingFrame,
    PongEvent,
    SessionData,
    SessionEvent,
    client_frame_adapter,
)
from app.chat.service import ConversationService
from app.chat.turns import ChatSession, Client
from app.core.config import Settings, origin_of
from app.core.errors import (
    AppError,
    BusyError,
    InvalidMessageError,
    MessageTooLongError,
    SessionNotFoundError,
)
from app.core.logger import get_logger, session_id_var
from app.live.hub import LiveHub

router = APIRouter()
logger = get_logger(__name__)

_PONG = PongEvent().model_dump_json()
NORMAL_CLOSURE, GOING_AWAY, POLICY_VIOLATION, TRY_AGAIN_LATER = 1000, 1001, 1008, 1013


@router.websocket("/ws")
async def chat_socket(
    websocket: WebSocket,
    service: ServiceDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    metrics: MetricsDep,
    connections: ConnectionsDep,
    client: ClientDep,
    hub: LiveHubDep,
    session_id: str | None = None,
    last_seq: str | None = None,
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
            await stack.enter_async_context(limiter.connection(client.network))
        except AppError as error:
            metrics.refused("connection_limit")
            await _deny(websocket, error)
            return
        await websocket.accept()
        stack.enter_context(connections.track(websocket))
        metrics.connection_opened()
        stack.callback(metrics.connection_closed)
        requested = (session_id, _last_seq(last_seq))
        await _converse(websocket, service, hub, settings, client, requested)


async def _converse(
    websocket: WebSocket,
    service: ConversationService,
    hub: LiveHub,
    settings: Settings,
    client: Client,
    requested: tuple[str | None, int],
) -> None:
    sender = SocketSender(websocket, settings.ws_send_timeout)
    session_id, last_seq = requested
    try:
        opened = await service.open_session(session_id)
    except AppError as error:
        await sender.send(error_frame(error))
        await websocket.close(TRY_AGAIN_LATER, "storage unavailable")
        return
    session_id_var.set(str(opened.session.id))
    if opened.not_found:
        await sender.send(error_frame(SessionNotFoundError()))
    streaming = await hub.find(opened.session.id) if opened.resumed else None
    history = opened.history if streaming is None else _up_to(opened.history, streaming.question)
    data = SessionData(
        session_id=opened.session.id,
        resumed=opened.resumed,
        history=history,
        answering=streaming is not None,
    )
    await sender.send(SessionEvent(data=data).model_dump_json())
    socket = _Socket(websocket, sender, service, hub, opened.session, client)
    if streaming is not None:
        socket.follow(hub.follow(streaming, last_seq))
    try:
        await socket.serve(settings)
    finally:
        sender.open = False
        socket.stop_following()


class _Socket:
    """One visitor's socket: reads frames, starts turns, follows the answer being streamed."""

    def __init__(
        self,
        websocket: WebSocket,
        sender: SocketSender,
        service: ConversationService,
        hub: LiveHub,
        chat: ChatSession,
        client: Client,
    ) -> None:
        self._websocket, self._sender, self._service, self._hub = websocket, sender, service, hub
        self._chat, self._client = chat, client
        self._following: asyncio.Task[None] | None = None

    def answering(self) -> bool:
        following = self._following is not None and not self._following.done()
        # An answer whose final frame is out is over, even while its turn still tidies up
        # (releasing its stream slot): the visitor may ask again as soon as `done` arrives.
        local = self._hub.local(self._chat.id)
        return following or (local is not None and not local.final)

    def follow(self, batches: AsyncIterator[list[str]]) -> None:
        self._following = asyncio.create_task(self._sender.pump(batches))

    def stop_following(self) -> None:
        if self._following is not None:
            self._following.cancel()

    async def serve(self, settings: Settings) -> None:
        while True:
            raw = await _receive(self._websocket, settings.ws_idle_timeout, self.answering)
            if raw is None:
                return
            try:
                frame = _parse(raw, settings.ws_max_frame_bytes)
            except AppError as error:
                await self._sender.send(error_frame(error))
                continue
            match frame:
                case PingFrame():
                    await self._sender.send(_PONG)
                case CancelFrame():
                    self._hub.cancel(self._chat.id)
                case MessageFrame(data=question):
                    await self._ask(question)

    async def _ask(self, question: str) -> None:
        if self.answering():
            await self._sender.send(error_frame(BusyError()))
            return
        try:
            _, answer = start_live_turn(
                self._service, self._hub, self._chat, question, self._client
            )
        except AppError as error:
            await self._sender.send(error_frame(error))
            return
        self.follow(answer.follow())


def _up_to(history: list[HistoryItem], question: str) -> list[HistoryItem]:
    """History before the answer being streamed (stored already if it just finished)."""
    if len(history) >= 2 and history[-1].role == "assistant" and history[-2].content == question:
        return history[:-1]
    return history


def _last_seq(value: str | None) -> int:
    """The last chunk a reconnecting client saw; anything unreadable replays from the start."""
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        return 0


async def _receive(
    websocket: WebSocket, idle_seconds: float, answering: Callable[[], bool]
) -> str | bytes | None:
    """The next frame; None once the client has gone or was closed for idling."""
    while websocket.client_state is WebSocketState.CONNECTED:
        try:
            async with asyncio.timeout(idle_seconds):
                message = await websocket.receive()
        except TimeoutError:
            if answering():
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
    """Browsers always send Origin; other clients (curl, scripts) may not and are let in.

    `allowed` is ALLOWED_ORIGINS as settings normalised it, the same list CORS uses.
    """
    if origin is None or "*" in allowed:
        return True
    return origin_of(origin) in allowed


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
