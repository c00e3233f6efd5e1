"""The AI SDK's UI message stream protocol (v1): what `useChat` sends, and what it reads.

`DefaultChatTransport` POSTs `{id, messages, trigger, messageId}`, each message with
`parts`. The answer is Server-Sent Events, each `data:` one JSON part: `start`, then
`text-start`, `text-delta`s and `text-end` for the text, then `finish` (or `error` and
`finish`), then `data: [DONE]`. Answers come from the live answer's frames (the
socket's `chunk`, `done` and `error`), so a stream replayed for a client that
re-attaches is the same stream.
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.api.socket.delivery import coalesce
from app.chat.protocol import ChunkEvent, DoneData, DoneEvent, ErrorEvent
from app.core.errors import AppError, InvalidMessageError

# useChat's generated ids are 16 letters and digits; UUIDs fit too. A chat id is the
# only key to its conversation, so short or guessable ones are refused.
CHAT_ID_PATTERN = r"^[A-Za-z0-9_-]{16,128}$"

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
DONE = "data: [DONE]\n\n"
SSE_EVENT = {
    "type": "object",
    "description": "One event; `data` is one part as JSON, or `[DONE]` last.",
    "properties": {"data": {"type": "string"}},
    "required": ["data"],
}
_TEXT_ID = "text-0"  # one text part per answer
_FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content-filter"}


class UIPart(BaseModel):
    """A message part; only `text` parts are read, the others (files, tools) are ignored."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(max_length=200)
    text: str | None = None


class UIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(default="", max_length=200)
    role: Literal["system", "user", "assistant"]
    parts: list[UIPart] = Field(default_factory=list, max_length=1000)


class UIChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="ignore",  # the transport's `body` option may add fields of the site's own
        json_schema_extra={
            "examples": [
                {
                    "id": "Hx9cTqLwA2mVb7Rk",
                    "messages": [
                        {
                            "id": "m1",
                            "role": "user",
                            "parts": [{"type": "text", "text": "What does she do?"}],
                        }
                    ],
                    "trigger": "submit-message",
                }
            ]
        },
    )

    id: str = Field(
        pattern=CHAT_ID_PATTERN,
        description="The chat id: 16 to 128 letters, digits, `-` or `_` (useChat's own ids "
        "are). It is the key to the conversation, so never a fixed or guessable one.",
    )
    messages: list[UIMessage] = Field(
        min_length=1,
        max_length=1000,
        description="useChat's messages. Only the last one is read, as the question: the "
        "model sees the conversation as stored, never the history a client sends.",
    )
    trigger: Literal["submit-message", "regenerate-message"] = Field(
        default="submit-message",
        description="Both ask the last user message as a new turn; stored history is "
        "append-only, so a regenerated answer follows the earlier one.",
    )
    message_id: str | None = Field(default=None, alias="messageId", max_length=200)

    def question(self) -> str:
        """The text of the last message, which must be the visitor's."""
        last = self.messages[-1]
        if last.role != "user":
            raise InvalidMessageError("The last message must be the visitor's (role user).")
        return "".join(part.text or "" for part in last.parts if part.type == "text")


_live_event: TypeAdapter[ChunkEvent | DoneEvent | ErrorEvent] = TypeAdapter(
    Annotated[ChunkEvent | DoneEvent | ErrorEvent, Field(discriminator="type")]
)


def _part(part: dict[str, Any]) -> str:
    return f"data: {orjson.dumps(part).decode()}\n\n"


def _metadata(done: DoneData) -> dict[str, Any]:
    return done.model_dump(mode="json", exclude={"content"})


class _Encoder:
    """Turns an answer's frames into UI parts, opening the text part at the first chunk."""

    def __init__(self) -> None:
        self._text_open = False

    def frame(self, raw: str) -> str:
        match _live_event.validate_json(raw):
            case ChunkEvent(data=text):
                opening = "" if self._text_open else _part({"type": "text-start", "id": _TEXT_ID})
                self._text_open = True
                return opening + _part({"type": "text-delta", "id": _TEXT_ID, "delta": text})
            case DoneEvent(data=done):
                reason = _FINISH_REASONS.get(done.finish_reason, "other")
                metadata = _metadata(done)
                finish = {"type": "finish", "finishReason": reason, "messageMetadata": metadata}
                return self._close_text() + _part(finish)
            case ErrorEvent(data=error):
                return self.failed(error.message)

    def failed(self, message: str) -> str:
        error = _part({"type": "error", "errorText": message})
        return self._close_text() + error + _part({"type": "finish", "finishReason": "error"})

    def _close_text(self) -> str:
        if not self._text_open:
            return ""
        self._text_open = False
        return _part({"type": "text-end", "id": _TEXT_ID})


async def ui_parts(frames: AsyncIterator[list[str]]) -> AsyncIterator[str]:
    """One answer as a UI message stream, from its live frames to `[DONE]`; the chunks of
    a batch (what streamed in since the last write) are one `text-delta`."""
    encoder = _Encoder()
    yield _part({"type": "start"})
    try:
        async for batch in frames:
            yield "".join(encoder.frame(raw) for raw in coalesce(batch))
    except AppError as error:  # the answer could not be followed to its end
        yield encoder.failed(error.message)
    yield DONE


async def refusal(error: AppError) -> AsyncIterator[str]:
    """A question refused before any answer: `start`, `error`, `finish`, `[DONE]`."""
    yield _part({"type": "start"}) + _Encoder().failed(error.message) + DONE
