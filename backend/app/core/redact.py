"""Credentials kept out of messages and logs: passwords in URLs, secrets in query strings."""

import re

# scheme://user:password@host: the password runs to the netloc's last `@`.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):[^/?#\s]*@")
# ?password=... as asyncpg and libpq accept it, and the like.
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|api_key|key|sslpassword)=)[^&#\s'\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every URL's password, and secret query values, replaced by `***`.

    Works on any text (an exception's message, a repr), not only on one whole URL, so a
    library that echoes the URL it could not parse gives nothing away.
    """
    text = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    return _QUERY_SECRET.sub(r"\g<head>***", text)


def describe(exc: BaseException) -> str:
    """An exception for a log line: its class and its redacted message, never blank.

    Timeouts and some driver errors have an empty `str()`; the class still says what
    happened.
    """
    message = redact(str(exc)).strip()
    name = type(exc).__qualname__
    return f"{name}: {message}" if message else name
