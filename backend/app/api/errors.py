"""The one place where domain errors become HTTP responses and WebSocket events."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.errors import AppError
from app.models.websocket import ErrorData, ErrorEvent


class ErrorBody(BaseModel):
    error: ErrorData


def error_event(error: AppError) -> ErrorEvent:
    return ErrorEvent(data=ErrorData(code=error.code, message=error.message))


async def _app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body = ErrorBody(error=ErrorData(code=exc.code, message=exc.message))
    return JSONResponse(body.model_dump(), status_code=exc.status_code)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
