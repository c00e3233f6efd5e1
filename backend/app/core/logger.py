"""Logging set-up: one format for the app and uvicorn, with the chat session on every line.

`LOG_FORMAT=json` writes one JSON object per line: `timestamp`, `level`, `logger`,
`message`, `session_id` and whatever the call passed as `extra={...}`. The app's,
uvicorn's and the root logger all share one handler once the lifespan has started.
Uvicorn's lines from before that (and all of its `--workers` supervisor's) keep its own
format unless it is started with a `--log-config` whose formatter and filter are
`app.core.logger.JsonLineFormatter` and `app.core.logger.SessionFilter`."""

import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

session_id_var: ContextVar[str] = ContextVar("session_id", default="-")
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

_FORMAT = (
    "%(asctime)s %(levelname)-7s %(name)s "
    "[request=%(request_id)s session=%(session_id)s] %(message)s"
)
_OWN_LOGGERS = ("app", "uvicorn", "uvicorn.error", "uvicorn.access")


class SessionFilter(logging.Filter):
    """Adds the current request and chat session (or `-`) unless the call passed its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id_var.get()
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RequestLineFilter(logging.Filter):
    """Keeps chat session ids out of uvicorn's request lines (its access log, and the
    `"WebSocket /ws?session_id=..." [accepted]` lines): a session id is all it takes to
    read or continue a conversation. Ids in the URL become `***` and the line's session
    field `-`; the request id still ties the line to the app's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _is_request_line(record):
            return True
        record.args = tuple(
            _hide_ids(arg) if isinstance(arg, str) else arg for arg in record.args or ()
        )
        record.session_id = "-"
        return True


# `?session_id=` (the socket), `/sessions/{id}` (REST), `/conversations/{id}` (the owner's
# routes) and the AI SDK's `/chat/{chat_id}/stream`.
_SESSION_IN_URL = re.compile(
    r"(?P<head>[?&](?:session_id|chat_id)=|/(?:sessions|conversations)/)[^/?&#\s]+"
    r"|(?P<chat>/chat/)[^/?&#\s]+(?=/stream)"
)


def _hide_ids(text: str) -> str:
    return _SESSION_IN_URL.sub(lambda m: f"{m['head'] or m['chat']}***", text)


def _is_request_line(record: logging.LogRecord) -> bool:
    if not isinstance(record.args, tuple):
        return False
    if record.name == "uvicorn.access":
        return True
    return record.name == "uvicorn.error" and str(record.msg).startswith('%s - "WebSocket ')


class JsonLineFormatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message", "request_id", "session_id"],
            rename_fields={"levelname": "level", "name": "logger"},
            # uvicorn adds a terminal-coloured copy of some messages.
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        super().add_fields(log_data, record, message_dict)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to `sys.stderr` as it is now, so a replaced stream (pytest's capture) is followed."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(level: str, fmt: Literal["text", "json"] = "text") -> None:
    """Route the app's, uvicorn's and other libraries' logs through one handler.

    Safe to call again: the handler installed last replaces the earlier one.
    """
    handler = _StderrHandler()
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(_FORMAT))
    handler.addFilter(SessionFilter())
    for name in _OWN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RequestLineFilter) for f in logger.filters):
            logger.addFilter(RequestLineFilter())
    logging.getLogger("app").setLevel(level)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    handler.setLevel(logging.DEBUG)
    # Other libraries speak up only for warnings (bm25s, for one, narrates at DEBUG).
    handler.addFilter(lambda record: record.levelno >= logging.WARNING or _is_ours(record))
    # httpx logs every request URL at INFO; keep it for debugging only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _is_ours(record: logging.LogRecord) -> bool:
    return record.name.split(".")[0] in ("app", "uvicorn")


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
