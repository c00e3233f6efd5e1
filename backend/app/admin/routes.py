"""The owner's and operator's routes under /api/admin, behind `Authorization: Bearer ADMIN_TOKEN`.

While ADMIN_TOKEN is unset every route here answers 404, as if it did not exist.
"""

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from app.admin.markdown import markdown, when
from app.admin.schemas import (
    Answering,
    ConversationPage,
    ExportFormat,
    Stats,
    Transcript,
    TranscriptExport,
)
from app.admin.service import window
from app.api.auth import require_bearer
from app.api.deps import AdminDep, ServiceDep, SettingsDep
from app.api.errors import documented_error
from app.core.config import Settings
from app.core.errors import InvalidResumeError, ResumeError
from app.db.base import utcnow

_MEDIA = {"json": "application/json", "markdown": "text/markdown; charset=utf-8"}
_SUFFIX = {"json": "json", "markdown": "md"}


_UNAUTHORIZED = documented_error(
    "The bearer token is missing or wrong", "unauthorized", "A valid bearer token is required."
)
_DISABLED = documented_error(
    "ADMIN_TOKEN is unset: the admin routes do not exist", "not_found", "Not Found."
)
_NO_CONVERSATION = documented_error(
    "No conversation has that id (or ADMIN_TOKEN is unset: `not_found`)",
    "session_not_found",
    "No conversation has that id.",
)
_INVALID = documented_error(
    "A parameter is invalid, such as a cursor this server did not give out",
    "invalid_request",
    "That cursor is not one this server gave out.",
)
_STORAGE = documented_error(
    "The database is unavailable",
    "storage_unavailable",
    "The conversation store is unavailable right now. Please try again shortly.",
)


_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="The service's ADMIN_TOKEN."
)


def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """404 while ADMIN_TOKEN is unset, the very answer an unknown path gets; 401 without it."""
    if settings.admin_token is None:
        raise HTTPException(status_code=404)
    require_bearer(credentials, settings.admin_token)


Since = Annotated[
    date | datetime | None,
    Query(description="Updated at or after this (a date means its start, UTC)."),
]
Until = Annotated[
    date | datetime | None,
    Query(description="Updated at or before this (a date means its whole day, UTC)."),
]
Search = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Only conversations with a question or answer containing these words "
        "(all of them, in one message): PostgreSQL full-text search in English (other "
        "forms of a word match), SQLite substrings.",
    ),
]
Format = Annotated[ExportFormat, Query(alias="format", description="`json` or `markdown`.")]

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={401: _UNAUTHORIZED, 404: _DISABLED, 503: _STORAGE},
)


@router.get(
    "/conversations",
    summary="List conversations, most recently active first",
    response_model=ConversationPage,
    responses={422: _INVALID},
)
async def list_conversations(
    admin: AdminDep,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
    q: Search = None,
    has_lead: Annotated[
        bool | None, Query(description="Only those with (`true`) or without (`false`) a lead.")
    ] = None,
) -> ConversationPage:
    return await admin.list_conversations(
        window(since, until), limit, cursor, search=q, has_lead=has_lead
    )


@router.get(
    "/conversations/{conversation_id}",
    summary="One conversation's transcript, with what each answer cost",
    response_model=Transcript,
    responses={404: _NO_CONVERSATION, 422: _INVALID},
)
async def get_transcript(conversation_id: uuid.UUID, admin: AdminDep) -> Transcript:
    return await admin.transcript(conversation_id)


@router.get(
    "/conversations/{conversation_id}/export",
    summary="Download one conversation as JSON or Markdown",
    response_class=JSONResponse,
    responses={
        200: {
            "model": Transcript,
            "description": "An attachment: the transcript as JSON, or as readable Markdown",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        404: _NO_CONVERSATION,
        422: _INVALID,
    },
)
async def export_conversation(
    conversation_id: uuid.UUID, admin: AdminDep, export_format: Format = "json"
) -> Response:
    transcript = await admin.transcript(conversation_id)
    if export_format == "json":
        body = transcript.model_dump_json(indent=2)
    else:
        body = markdown(transcript, level=1)
    return Response(
        body,
        media_type=_MEDIA[export_format],
        headers=_attachment(f"conversation-{conversation_id}", export_format),
    )


@router.get(
    "/export",
    summary="Download every conversation (optionally of a date range) as JSON or Markdown",
    response_class=JSONResponse,
    responses={
        200: {
            "model": TranscriptExport,
            "description": "An attachment, streamed: JSON, or readable Markdown",
            "content": {"text/markdown": {"schema": {"type": "string"}}},
        },
        422: _INVALID,
    },
)
async def export_all(
    admin: AdminDep, since: Since = None, until: Until = None, export_format: Format = "json"
) -> StreamingResponse:
    transcripts = admin.transcripts(window(since, until))
    first = await anext(transcripts, None)  # a database failure is still a 503 here
    now = utcnow()
    render = _json_export if export_format == "json" else _markdown_export
    return StreamingResponse(
        render(first, transcripts, now),
        media_type=_MEDIA[export_format],
        headers=_attachment(f"conversations-{now:%Y-%m-%d}", export_format),
    )


@router.delete(
    "/conversations/{conversation_id}",
    summary="Delete a conversation and all its messages, for good",
    status_code=204,
    response_class=Response,
    responses={404: _NO_CONVERSATION, 422: _INVALID},
)
async def delete_conversation(conversation_id: uuid.UUID, admin: AdminDep) -> None:
    await admin.delete(conversation_id)


@router.get(
    "/stats",
    summary="Usage per day: conversations, questions, tokens, cost; most frequent questions",
    response_model=Stats,
    responses={422: _INVALID},
)
async def stats(
    admin: AdminDep,
    settings: SettingsDep,
    days: Annotated[int, Query(ge=1, le=366, description="UTC days, today included.")] = 30,
) -> Stats:
    return await admin.stats(days, _answering(settings))


def _answering(settings: Settings) -> Answering:
    models = [settings.llm_model, *settings.llm_fallback_models]
    return Answering(mode=settings.answer_mode, models=models if settings.llm_configured else [])


class ResumeReloaded(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Maya Lindqvist", "format": "markdown", "characters": 4135}]
        }
    )

    name: str
    format: str
    characters: int


_BROKEN_RESUME = documented_error(
    "The file could not be loaded; the resume in use is unchanged",
    "resume_invalid",
    "Resume file /app/data/resume.pdf is empty after text extraction.",
)


@router.post(
    "/resume/reload",
    summary="Load the resume file again, without a restart",
    response_model=ResumeReloaded,
    responses={422: _BROKEN_RESUME},
)
async def reload_resume(service: ServiceDep, settings: SettingsDep) -> ResumeReloaded:
    try:
        resume = await service.reload_resume(settings.resume_path, settings.resume_max_bytes)
    except ResumeError as error:
        raise InvalidResumeError(error.message) from error
    return ResumeReloaded(name=resume.owner_name, format=resume.format, characters=len(resume.text))


def _attachment(name: str, export_format: ExportFormat) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}.{_SUFFIX[export_format]}"'}


async def _json_export(
    first: Transcript | None, rest: AsyncIterator[Transcript], now: datetime
) -> AsyncIterator[str]:
    yield f'{{"exported_at":"{now.isoformat()}","conversations":['
    if first is not None:
        yield first.model_dump_json()
        async for transcript in rest:
            yield "," + transcript.model_dump_json()
    yield "]}"


async def _markdown_export(
    first: Transcript | None, rest: AsyncIterator[Transcript], now: datetime
) -> AsyncIterator[str]:
    yield f"# Conversations exported {when(now)}\n\n"
    if first is None:
        yield "_No conversations._\n"
        return
    yield markdown(first, level=2)
    async for transcript in rest:
        yield "\n" + markdown(transcript, level=2)
