"""The checks every question passes before anything is stored or sent upstream."""

import re

from app.core.errors import InvalidMessageError, MessageTooLongError
from app.llm.tokens import TokenCounter

# C0 controls other than tab, newline and carriage return; DEL; C1 controls.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def check_question(
    question: str, counter: TokenCounter, *, max_chars: int, max_tokens: int
) -> tuple[str, int]:
    """The question as it will be stored, and its token count; or why it is refused."""
    question = question.strip()
    if not question:
        raise InvalidMessageError("A question cannot be empty.")
    if _CONTROL_CHARACTERS.search(question):
        raise InvalidMessageError("Questions cannot contain control characters.")
    if len(question) > max_chars:
        raise MessageTooLongError(
            f"Questions are limited to {max_chars} characters (this one has {len(question)})."
        )
    tokens = counter.count(question)
    if tokens > max_tokens:
        raise MessageTooLongError(
            f"Questions are limited to {max_tokens} tokens (this one has {tokens})."
        )
    return question, tokens
