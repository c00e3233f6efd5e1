import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from app.core.logger import get_logger, session_id_var, setup_logging

TOUCHED = ("", "app", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave the process's loggers as the test found them."""
    saved = [
        (logger, logger.handlers[:], logger.level, logger.propagate)
        for logger in map(logging.getLogger, TOUCHED)
    ]
    yield
    for logger, handlers, level, propagate in saved:
        logger.handlers = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_json_lines_carry_the_standard_fields_and_the_extras(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO", "json")
    get_logger("app.chat.service").info(
        "answer %s", "stop", extra={"outcome": "stop", "latency_ms": 812, "model": "m"}
    )
    logging.getLogger("uvicorn.error").warning(
        "Uvicorn running on %s", "http://x", extra={"color_message": "\x1b[1mcolour\x1b[0m"}
    )

    answer, uvicorn = json_lines(capsys)
    assert answer == {
        "timestamp": answer["timestamp"],
        "level": "INFO",
        "logger": "app.chat.service",
        "message": "answer stop",
        "request_id": "-",
        "session_id": "-",
        "outcome": "stop",
        "latency_ms": 812,
        "model": "m",
    }
    assert datetime.fromisoformat(answer["timestamp"]).tzinfo is not None
    assert uvicorn["logger"] == "uvicorn.error"
    assert uvicorn["message"] == "Uvicorn running on http://x"
    assert "color_message" not in uvicorn


def test_json_lines_name_the_current_session(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json")
    token = session_id_var.set("0b7e5a52-session")
    try:
        get_logger("app.api.socket.routes").info("question received")
    finally:
        session_id_var.reset(token)
    get_logger("app.api.socket.routes").info("after the session")

    inside, outside = json_lines(capsys)
    assert inside["session_id"] == "0b7e5a52-session"
    assert outside["session_id"] == "-"


def test_text_lines_name_the_current_session(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO")
    token = session_id_var.set("0b7e5a52-session")
    try:
        get_logger("app.api.socket.routes").info("question received")
    finally:
        session_id_var.reset(token)

    (line,) = capsys.readouterr().err.splitlines()
    assert "INFO" in line
    assert "app.api.socket.routes [request=- session=0b7e5a52-session] question received" in line


def test_setting_up_twice_writes_each_line_once(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "text")
    setup_logging("DEBUG", "json")
    get_logger("app.x").debug("from the app")
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("uvicorn.access").warning("from the access log")
    logging.getLogger("some.library").warning("from a library")

    lines = json_lines(capsys)
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("app.x", "from the app"),
        ("uvicorn.error", "from uvicorn"),
        ("uvicorn.access", "from the access log"),
        ("some.library", "from a library"),
    ]


def test_the_level_applies_to_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("WARNING", "json")
    get_logger("app.x").info("hidden")
    get_logger("app.x").warning("shown")

    assert [line["message"] for line in json_lines(capsys)] == ["shown"]
