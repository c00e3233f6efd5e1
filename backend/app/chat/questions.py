"""The checks every question passes before anything is stored or sent upstream."""

import re
import unicodedata

from app.core.errors import InvalidMessageError, MessageTooLongError
from app.llm.tokens import TokenCounter

# C0 controls other than tab, newline and carriage return; DEL; C1 controls.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Format characters (zero-width spaces and joiners, BOM, bidi marks: category Cf),
# combining marks with nothing to combine with, and the letters and symbols drawn blank.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Zs", "Zl", "Zp"})
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def check_question(
    question: str, counter: TokenCounter, *, max_chars: int, max_tokens: int
) -> tuple[str, int]:
    """The question as it will be stored, and its token count; or why it is refused."""
    question = question.strip()
    if _invisible(question):
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


def _invisible(text: str) -> bool:
    """Nothing a reader would see: empty, or only whitespace and invisible characters."""
    return all(
        char.isspace()
        or char in _BLANK_GLYPHS
        or unicodedata.category(char) in _INVISIBLE_CATEGORIES
        for char in text
    )
