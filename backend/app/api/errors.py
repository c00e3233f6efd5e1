"""The one place where domain errors become HTTP responses and WebSocket events."""

import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.errors import AppError
from app.models.websocket import ErrorData, ErrorEvent


class ErrorBody(BaseModel):
    error: ErrorData


def error_data(error: AppError) -> ErrorData:
    return ErrorData(code=error.code, message=error.message, retry_after=error.retry_after)


def error_event(error: AppError) -> ErrorEvent:
    return ErrorEvent(data=error_data(error))


async def _app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body = ErrorBody(error=error_data(exc)).model_dump(exclude_none=True)
    headers = {"Retry-After": str(math.ceil(exc.retry_after))} if exc.retry_after else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
