"""The OpenAI chat API, so any OpenAI client can ask about the resume: `/v1/chat/completions`
(whole or streamed) and `/v1/models`.

History is the server's, never the client's: the last message, which must be a user
message, is the question; the model sees the stored conversation before it. Earlier
messages a client sends (system prompts, assistant turns, other user turns) are ignored,
so nobody can put words in the bot's mouth. A conversation is named by the `X-Session-Id`
header (or `metadata.session_id`); without one a new conversation starts, and every
response carries its id in `X-Session-Id`. Sampling parameters, tools and `model` are
the server's to choose, and are ignored. The turn runs through `start_turn` like every
other way in, so limits, budgets and storage hold; a streamed answer whose client goes
away is stopped (and stored as cancelled).
"""

import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, HTTPException, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.chat import QueueSink, TurnEvent
from app.api.compat.ui_stream import SSE_EVENT
from app.api.deps import ClientDep, ServiceDep
from app.api.errors import ERROR_RESPONSES, documented_error
from app.chat.protocol import DoneData, Usage
from app.chat.service import ConversationService
from app.chat.turns import ActiveTurn, ChatSession
from app.core.errors import AppError, InvalidMessageError, SessionNotFoundError
from app.core.logger import session_id_var

router = APIRouter(prefix="/v1", tags=["openai"])

MODEL_ID = "resume-chat"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str = Field(max_length=200)
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",  # temperature, tools, user...: the server's to choose
        json_schema_extra={
            "examples": [
                {
                    "model": MODEL_ID,
                    "messages": [{"role": "user", "content": "What does she do?"}],
                    "stream": False,
                }
            ]
        },
    )

    model: str = Field(default=MODEL_ID, description=f"Ignored; `{MODEL_ID}` answers.")
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=1000,
        description="Only the last message is read; it must be `user`. Earlier ones are "
        "ignored: the model sees the conversation as stored.",
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="One answer per question.")
    metadata: dict[str, str] | None = Field(
        default=None, description="`session_id` continues a conversation (as `X-Session-Id`)."
    )

    def question(self) -> str:
        last = self.messages[-1]
        if last.role != "user":
            raise InvalidMessageError("The last message must be the visitor's (role user).")
        if isinstance(last.content, list):
            return "".join(part.text or "" for part in last.content if part.type == "text")
        return last.content or ""


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "content_filter"]


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[Choice]
    usage: Usage


class Model(BaseModel):
    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "resume-chatbot"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


@router.get("/models", summary="The one model: the resume chat (OpenAI API)")
async def models() -> ModelList:
    return ModelList(data=[Model()])


@router.get(
    "/models/{model_id}",
    summary="The resume chat's model entry (OpenAI API)",
    responses={
        404: documented_error(
            "No such model", "not_found", f"No model 'gpt-4o'; this is {MODEL_ID}."
        )
    },
)
async def model(model_id: str) -> Model:
    if model_id != MODEL_ID:
        raise HTTPException(404, f"No model {model_id!r}; this is {MODEL_ID}.")
    return Model()


@router.post(
    "/chat/completions",
    summary="Ask, as an OpenAI chat client does",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": "The answer; with `stream`, Server-Sent Events of "
            "`chat.completion.chunk`s then `data: [DONE]` (an error mid-answer is a "
            '`data: {"error": ...}` event). `X-Session-Id` names the conversation.',
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **ERROR_RESPONSES,
    },
)
async def chat_completions(
    body: CompletionRequest,
    response: Response,
    service: ServiceDep,
    client: ClientDep,
    x_session_id: Annotated[str | None, Header()] = None,
) -> Any:
    requested = x_session_id or (body.metadata or {}).get("session_id")
    chat = await _session(service, requested)
    session_id_var.set(str(chat.id))
    sink = QueueSink()
    turn = service.start_turn(chat, body.question(), client, sink)
    first = await sink.next()
    if isinstance(first, AppError):
        raise first
    reply = _Reply(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()))
    if body.stream:
        usage = body.stream_options is not None and body.stream_options.include_usage
        headers = _SSE_HEADERS | {"X-Session-Id": str(chat.id)}
        chunks = reply.stream(first, sink, turn, include_usage=usage)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)
    response.headers["X-Session-Id"] = str(chat.id)
    event: TurnEvent = first
    while isinstance(event, str):
        event = await sink.next()
    if isinstance(event, AppError):
        raise event
    return reply.whole(event)


async def _session(service: ConversationService, requested: str | None) -> ChatSession:
    opened = await service.open_session(requested)
    if opened.not_found:
        raise SessionNotFoundError("No conversation has that session id; omit it to start one.")
    return opened.session


class _Reply:
    """One answer in the OpenAI shapes: a whole `chat.completion` or streamed chunks."""

    def __init__(self, completion_id: str, created: int) -> None:
        self._id, self._created = completion_id, created

    def whole(self, done: DoneData) -> ChatCompletion:
        message = AssistantMessage(content=done.content)
        choice = Choice(message=message, finish_reason=_finish_reason(done))
        usage = done.usage
        return ChatCompletion(id=self._id, created=self._created, choices=[choice], usage=usage)

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": MODEL_ID,
            "choices": choices,
            **extra,
        }
        return f"data: {orjson.dumps(chunk).decode()}\n\n"

    def _delta(self, delta: dict[str, str], finish_reason: str | None = None) -> str:
        return self._chunk([{"index": 0, "delta": delta, "finish_reason": finish_reason}])

    async def stream(
        self, first: TurnEvent, sink: QueueSink, turn: ActiveTurn, *, include_usage: bool
    ) -> AsyncIterator[str]:
        """Chunks up to `[DONE]`; a client that leaves stops the model."""
        ended = False
        try:
            yield self._delta({"role": "assistant", "content": ""})
            event = first
            while isinstance(event, str):
                yield self._delta({"content": event})
                event = await sink.next()
            ended = True
            if isinstance(event, AppError):
                error = {"message": event.message, "type": event.code, "code": event.code}
                yield f"data: {orjson.dumps({'error': error}).decode()}\n\n"
                return
            yield self._delta({}, _finish_reason(event))
            if include_usage:
                yield self._chunk([], usage=event.usage.model_dump())
            yield "data: [DONE]\n\n"
        finally:
            if not ended:
                turn.cancel()


def _finish_reason(done: DoneData) -> Literal["stop", "length", "content_filter"]:
    """`cancelled` is only ever seen by a client that has gone; it reads as `stop`."""
    if done.finish_reason == "length":
        return "length"
    return "content_filter" if done.finish_reason == "content_filter" else "stop"
