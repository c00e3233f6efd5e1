"""Domain errors with stable codes, shared by HTTP and WebSocket edges.

Services raise these; only `app.api` turns them into HTTP responses or WS events.
"""

from typing import ClassVar


class AppError(Exception):
    """Base of every error a client or operator may see; `message` is a human sentence."""

    code: ClassVar[str] = "internal_error"
    status_code: ClassVar[int] = 500
    default_message: ClassVar[str] = "Something went wrong on our side. Please try again."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        super().__init__(self.message)


class StartupError(AppError):
    """The service cannot start: bad settings, unreadable resume, unreachable database."""

    code = "startup_error"
    default_message = "The service could not start."


class ResumeError(StartupError):
    code = "resume_invalid"
    default_message = "The resume file could not be loaded."


class InvalidResumeError(AppError):
    """A reload found the resume file broken; the one in use stays."""

    code = "resume_invalid"
    status_code = 422
    default_message = "The resume file could not be loaded."


class InvalidMessageError(AppError):
    code = "invalid_message"
    status_code = 422
    default_message = "That message could not be understood."


class InvalidCursorError(AppError):
    """A page cursor of the owner's lists (`app.core.cursor`) that this server did not give."""

    code = "invalid_request"
    status_code = 422
    default_message = "That cursor is not one this server gave out."


class MessageTooLongError(AppError):
    code = "message_too_long"
    status_code = 413
    default_message = "That message is too long."


class BusyError(AppError):
    code = "busy"
    status_code = 409
    default_message = "An answer is still being written. Wait for it or cancel it first."


class SessionNotFoundError(AppError):
    code = "session_not_found"
    status_code = 404
    default_message = "That conversation was not found; a new one was started."


class LLMUnavailableError(AppError):
    code = "llm_unavailable"
    status_code = 503
    default_message = "The assistant is unavailable right now. Please try again shortly."


class LLMRejectedError(LLMUnavailableError):
    """Not configured, or the provider refused the credentials: another model will not help."""


class LLMTimeoutError(AppError):
    code = "llm_timeout"
    status_code = 504
    default_message = "The assistant took too long to answer. Please try again."


class StorageUnavailableError(AppError):
    code = "storage_unavailable"
    status_code = 503
    default_message = "The conversation store is unavailable right now. Please try again shortly."


class RateLimitedError(AppError):
    """Too many questions or connections; `retry_after` says when to try again."""

    code = "rate_limited"
    status_code = 429
    default_message = "Too many requests. Please wait a moment and try again."


class BudgetExceededError(AppError):
    code = "budget_exceeded"
    status_code = 429
    default_message = "The assistant has reached its usage limit for now. Please try again later."


class SessionLimitError(AppError):
    code = "session_limit_reached"
    status_code = 429
    default_message = "This conversation has reached its length limit. Start a new one."


class AnswerInterruptedError(AppError):
    """The instance streaming an answer stopped before finishing it (shutdown or crash)."""

    code = "answer_interrupted"
    status_code = 503
    default_message = "The answer was interrupted before it finished. Please ask again."
