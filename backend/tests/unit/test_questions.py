"""check_question: what a visitor's question becomes before it is stored, or why it is refused."""

import pytest

from app.chat.questions import check_question
from app.core.errors import AppError, InvalidMessageError, MessageTooLongError
from app.llm.tokens import TokenCounter


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def check(counter: TokenCounter, text: str, max_chars: int = 100, max_tokens: int = 50) -> str:
    question, tokens = check_question(text, counter, max_chars=max_chars, max_tokens=max_tokens)
    assert tokens == counter.count(question)
    return question


def refused(
    counter: TokenCounter, text: str, max_chars: int = 100, max_tokens: int = 50
) -> AppError:
    with pytest.raises(AppError) as caught:
        check_question(text, counter, max_chars=max_chars, max_tokens=max_tokens)
    return caught.value


def test_a_question_is_stored_without_surrounding_whitespace(counter: TokenCounter) -> None:
    assert check(counter, "  \n What does she do?\t ") == "What does she do?"
    assert check(counter, "Line one\n\tline two\r\n") == "Line one\n\tline two"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\t\r\n",
        "\u200b\u200b\u200b",  # zero-width spaces
        "\ufeff",  # a byte-order mark
        " \u200c\u200d\u2060 \u00a0\u3000",  # joiners, word joiner, no-break spaces
        "\u202e\u2066\u200f",  # bidi controls and marks
        "\u3164\u3164",  # Hangul fillers
        "\u0301\u034f",  # combining marks with nothing to combine with
    ],
)
def test_an_empty_question_is_refused(counter: TokenCounter, text: str) -> None:
    error = refused(counter, text)
    assert isinstance(error, InvalidMessageError)
    assert error.code == "invalid_message"
    assert error.message == "A question cannot be empty."


@pytest.mark.parametrize(
    "control", ["\x00", "\x07", "\x1b[31m", "\x0b", "\x0c", "\x7f", "\x85", "\x9f"]
)
def test_control_characters_are_refused(counter: TokenCounter, control: str) -> None:
    error = refused(counter, f"Hello {control} there?")
    assert isinstance(error, InvalidMessageError)
    assert error.message == "Questions cannot contain control characters."


def test_characters_are_counted_after_stripping_and_not_as_bytes(counter: TokenCounter) -> None:
    assert check(counter, "  " + "å" * 20 + "  ", max_chars=20, max_tokens=1000) == "å" * 20
    error = refused(counter, "å" * 21, max_chars=20, max_tokens=1000)
    assert isinstance(error, MessageTooLongError)
    assert (error.code, error.status_code) == ("message_too_long", 413)
    assert error.message == "Questions are limited to 20 characters (this one has 21)."


def test_a_short_question_with_too_many_tokens_is_refused(counter: TokenCounter) -> None:
    text = "🦜" * 12  # few characters, many tokens
    tokens = counter.count(text)
    assert len(text) < tokens
    assert check(counter, text, max_chars=100, max_tokens=tokens) == text
    error = refused(counter, text, max_chars=100, max_tokens=tokens - 1)
    assert isinstance(error, MessageTooLongError)
    assert error.message == (
        f"Questions are limited to {tokens - 1} tokens (this one has {tokens})."
    )


def test_the_returned_token_count_is_the_question_s(counter: TokenCounter) -> None:
    question, tokens = check_question(
        "  Where is she based?  ", counter, max_chars=100, max_tokens=50
    )
    assert (question, tokens) == ("Where is she based?", counter.count("Where is she based?"))
    assert 3 < tokens < 10


@pytest.mark.parametrize("text", ["\u200bWhy?", "caf\u00e9\u0301?", "\u2764\ufe0f", "a\u200db"])
def test_text_with_something_visible_is_a_question(counter: TokenCounter, text: str) -> None:
    assert check(counter, text) == text
