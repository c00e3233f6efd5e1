"""The contact form for visitors, and the owner's leads, CSV export and unanswered questions.

The admin routes share /api/admin's bearer token (`ADMIN_TOKEN`); like the others they
answer 404 while it is unset.
"""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from app.admin.routes import require_admin
from app.api.deps import ClientDep, LeadsDep
from app.api.errors import ERROR_RESPONSES, documented_error
from app.db.base import utcnow
from app.leads.export import csv_rows
from app.leads.schemas import ContactCreated, ContactForm, GapList, LeadPage

router = APIRouter(prefix="/api", tags=["leads"])

_INVALID_EMAIL = documented_error(
    "The e-mail address (or another field) is invalid",
    "invalid_request",
    "email: value is not a valid email address: An email address must have an @-sign.",
)
_TOO_MANY = documented_error(
    "RATE_LIMIT_CONTACTS_PER_IP (or, for a new conversation, RATE_LIMIT_NEW_SESSIONS_PER_IP)",
    "rate_limited",
    "You have sent your details several times already. Please wait 42 minutes.",
)
_STORAGE = documented_error(
    "The database is unavailable",
    "storage_unavailable",
    "The conversation store is unavailable right now. Please try again shortly.",
)
_INVALID = documented_error(
    "A parameter is invalid, such as a cursor this server did not give out",
    "invalid_request",
    "That cursor is not one this server gave out.",
)
admin_router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={
        401: documented_error(
            "The bearer token is missing or wrong",
            "unauthorized",
            "A valid bearer token is required.",
        ),
        404: documented_error(
            "ADMIN_TOKEN is unset: the admin routes do not exist", "not_found", "Not Found."
        ),
        422: _INVALID,
        503: _STORAGE,
    },
)


@router.post(
    "/sessions/{session_id}/contact",
    summary="Leave contact details for the resume's owner",
    status_code=201,
    response_model=ContactCreated,
    responses={400: ERROR_RESPONSES[400], 422: _INVALID_EMAIL, 429: _TOO_MANY, 503: _STORAGE},
    description="Works with or without a model. An id the server has not stored yet (the "
    "widget's session before its first question) is stored as a conversation with no "
    "messages. A filled `website` (a honeypot) gets the same 201 and nothing is stored.",
)
async def leave_contact(
    session_id: uuid.UUID, form: ContactForm, leads: LeadsDep, client: ClientDep
) -> ContactCreated:
    return ContactCreated(id=await leads.submit_form(session_id, form, client))


@admin_router.get(
    "/leads",
    summary="List leads, newest first",
    response_model=LeadPage,
)
async def list_leads(
    leads: LeadsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
) -> LeadPage:
    return await leads.page(limit, cursor)


@admin_router.get(
    "/leads/export",
    summary="Download every lead as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_leads(leads: LeadsDep) -> StreamingResponse:
    name = f"leads-{utcnow():%Y-%m-%d}.csv"
    return StreamingResponse(
        csv_rows(leads.every_lead()),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@admin_router.get(
    "/gaps",
    summary="Questions the resume could not answer, most asked or newest first",
    response_model=GapList,
)
async def list_gaps(
    leads: LeadsDep,
    order: Annotated[
        Literal["recent", "count"], Query(description="`count` (most asked) or `recent`.")
    ] = "count",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> GapList:
    return GapList(items=await leads.gaps(order, limit))
