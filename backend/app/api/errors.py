"""The one place where errors become HTTP responses and WebSocket events.

Every HTTP error body has one shape, `{"error": {"code", "message"}}`, with the same
codes as the WebSocket's `error` events.
"""

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.chat.protocol import ErrorData, ErrorEvent
from app.core.errors import AppError


class ErrorBody(BaseModel):
    error: ErrorData


# ErrorBody's schema in the OpenAPI components, put there by `GET /ws`'s response model
# (app/api/socket/docs.py). Error responses point at it rather than naming the model, as
# `"model": ErrorBody` would have FastAPI build one more validator for every documented
# status of every route when the route is declared: 70 at start-up, for the same schema.
ERROR_BODY_REF = "#/components/schemas/ErrorBody"


def documented_error(description: str, code: str, message: str) -> dict[str, Any]:
    example = {"error": {"code": code, "message": message}}
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": ERROR_BODY_REF}, "example": example}},
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: documented_error(
        "The body could not be read", "bad_request", "There was an error parsing the body."
    ),
    404: documented_error(
        "No such conversation", "session_not_found", "No conversation has that session id."
    ),
    413: documented_error(
        "Question too long, or a body over MAX_REQUEST_BODY_BYTES",
        "message_too_long",
        "Questions are limited to 500 tokens.",
    ),
    422: documented_error("Malformed request", "invalid_request", "message: Field required."),
    429: documented_error(
        "A rate limit or budget was reached", "rate_limited", "Please wait 42 seconds."
    ),
    503: documented_error(
        "Model or storage unavailable", "llm_unavailable", "The assistant is unavailable."
    ),
    504: documented_error("The model took too long", "llm_timeout", "The assistant took too long."),
}


def error_data(error: AppError) -> ErrorData:
    return ErrorData(code=error.code, message=error.message, retry_after=error.retry_after)


def error_frame(error: AppError) -> str:
    """The `error` event as JSON text, for the WebSocket and Server-Sent Events alike."""
    return ErrorEvent(data=error_data(error)).model_dump_json(exclude_none=True)


def error_body(error: AppError) -> dict[str, Any]:
    """The HTTP error body; `retry_after` only where there is one."""
    return ErrorBody(error=error_data(error)).model_dump(exclude_none=True)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body = error_body(exc)
    headers = {"Retry-After": str(math.ceil(exc.retry_after))} if exc.retry_after else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return error_response(422, "invalid_request", "The body is not valid JSON.")
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
        problems.append(f"{where}: {error['msg'].rstrip('.')}")  # some end with one
    return error_response(422, "invalid_request", "; ".join(problems) + ".")


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    message = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else phrase + "."
    return error_response(exc.status_code, code, message, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
