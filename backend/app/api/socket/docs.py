"""The WebSocket protocol as Swagger UI shows it, on a documentation-only `GET /ws`."""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from app.api.errors import ErrorBody, error_response
from app.core.config import Settings

router = APIRouter(tags=["websocket"])

UPGRADE_REQUIRED = "Open /ws with a WebSocket client; /docs describes the protocol."


def limits_paragraph(settings: Settings) -> str:
    """The socket's limits as `settings` set them (`/openapi.json` shows the server's own)."""
    return (
        f"**Limits**: a question has at most {settings.max_message_chars:,} characters "
        f"(`MAX_MESSAGE_CHARS`) and {settings.max_message_tokens:,} tokens "
        f"(`MAX_MESSAGE_TOKENS`); a frame at most {settings.ws_max_frame_bytes:,} bytes "
        f"(`WS_MAX_FRAME_BYTES`); {settings.max_turns_per_session:,} questions per "
        f"conversation (`MAX_TURNS_PER_SESSION`); {settings.max_connections_per_ip:,} open "
        f"chats per address (`MAX_CONNECTIONS_PER_IP`)."
    )


PROTOCOL = """\
Open **`ws://HOST/ws`** with a WebSocket client (browsers: `new WebSocket(...)`), or
**`/ws?session_id=<uuid>`** to resume a conversation. Every frame is JSON text shaped
`{"type": ..., "data": ...}`. A plain HTTP GET here only answers 426 with this summary.

**Client → server**

| frame | meaning |
| --- | --- |
| `{"type": "message", "data": "What does she do?"}` | ask a question |
| `{"type": "cancel"}` | stop the answer in flight (the partial answer is kept) |
| `{"type": "ping"}` | the server answers `{"type": "pong", "data": null}` |

**Server → client**

1. First, always: `{"type": "session", "data": {"session_id": "3109bafa-...", "resumed": false,
   "history": [{"role": "user", "content": "Hi", "created_at": "2026-11-25T08:00:00Z"}],
   "answering": false}}` (after an `error` `session_not_found` when the requested session
   does not exist). `answering: true`: an answer is still streaming; its chunks follow.
2. Per question, `chunk` frames numbered from 1: `{"type": "chunk", "data": "Maya is a", "seq": 1}`
   (a client that falls behind, or reconnects, gets the chunks it missed joined in one
   frame with the last one's `seq`: numbers may skip, text never does)
3. then exactly one `done`: `{"type": "done", "data": {"content": "Maya is a backend engineer.",
   "finish_reason": "stop", "usage": {"prompt_tokens": 1254, "completion_tokens": 7,
   "total_tokens": 1261}, "model": "openai/gpt-4o-mini", "latency_ms": 812, "source": "model"}}`
   (`finish_reason`: `stop`, `length`, `content_filter`, `cancelled`, or `leak_blocked` when
   the answer began repeating the system prompt and was replaced by a sentence; `source`:
   `model`, or `resume_excerpt` when no model could answer and the reply quotes the resume)
4. or one `error`: `{"type": "error", "data": {"code": "rate_limited", "message": "Please wait
   42 seconds.", "retry_after": 42}}`

**Error codes**: `invalid_message` (not JSON, unknown type, wrong shape, binary frame,
control characters), `message_too_long`, `busy` (a question while an answer streams),
`session_not_found`, `rate_limited` (with `retry_after`), `budget_exceeded`,
`session_limit_reached`, `llm_unavailable`, `llm_timeout`, `answer_interrupted`,
`storage_unavailable`, `internal_error`. An error never closes the socket; the next good
frame is answered.

**Handshake refusals**: 403 for an `Origin` not in `ALLOWED_ORIGINS`, 429 when the address
has too many open chats. **Closes**: 1000 `idle timeout` after `WS_IDLE_TIMEOUT` of
silence, 1001 when the server shuts down (answers in flight finish first), 1008 `client
stopped reading` after `WS_SEND_TIMEOUT`, 1013 when storage is unavailable at connect.
A visitor who disconnects mid-answer loses nothing: the answer is completed and stored.
Reconnect with `?session_id=...&last_seq=N` while it streams to get the chunks after
`seq` N, then the rest live (any instance, with Redis).

"""
PROTOCOL += limits_paragraph(Settings.model_construct())


@router.get(
    "/ws",
    summary="The chat WebSocket: protocol",
    description=PROTOCOL,
    status_code=426,
    response_model=ErrorBody,
    responses={
        426: {
            "description": "Use a WebSocket client for this path.",
            "content": {
                "application/json": {
                    "example": {"error": {"code": "upgrade_required", "message": UPGRADE_REQUIRED}}
                }
            },
        }
    },
)
async def websocket_protocol(
    session_id: Annotated[
        str | None,
        Query(description="Resume this conversation (a `session` frame's `session_id`)."),
    ] = None,
    last_seq: Annotated[
        str | None,
        Query(
            description="With `session_id`: the last chunk `seq` seen; the answer streaming "
            "now continues after it (unreadable values replay it from the start)."
        ),
    ] = None,
) -> JSONResponse:
    return error_response(
        426,
        "upgrade_required",
        UPGRADE_REQUIRED,
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )
