"""Logging set-up: one format for the app and uvicorn, with the chat session on every line."""

import logging
from contextvars import ContextVar

session_id_var: ContextVar[str] = ContextVar("session_id", default="-")

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [session=%(session_id)s] %(message)s"


class _SessionFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.session_id = session_id_var.get()
        return True


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_SessionFilter())
    app_logger = logging.getLogger("app")
    app_logger.handlers = [handler]
    app_logger.setLevel(level)
    app_logger.propagate = False
    # httpx logs every request URL at INFO; keep it for debugging only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
