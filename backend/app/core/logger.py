"""Logging set-up: one format for the app and uvicorn, with the chat session on every line.

`LOG_FORMAT=json` writes one JSON object per line: `timestamp`, `level`, `logger`,
`message`, `session_id` and whatever the call passed as `extra={...}`. The app's,
uvicorn's and the root logger all share one handler once the lifespan has started.
Uvicorn's lines from before that (and all of its `--workers` supervisor's) keep its own
format unless it is started with a `--log-config` whose formatter and filter are
`app.core.logger.JsonLineFormatter` and `app.core.logger.SessionFilter`."""

import logging
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
