"""The one way to open a Redis client: lazy, quick to give up, with passwords kept out of logs."""

from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.errors import StartupError
from app.core.redact import redact

REDIS_TIMEOUT_SECONDS = 2.0


def open_redis(
    url: str, *, blocking_reads: bool = False, decode_responses: bool = False
) -> aioredis.Redis:
    """A client for `url` (connecting lazily) that gives up quickly when Redis is gone.

    `blocking_reads` drops the read deadline, for commands that wait on purpose
    (`XREAD BLOCK`); connecting keeps its deadline.

    One immediate retry on a fresh connection covers a Redis that restarted since the
    pooled connection was opened; redis-py's default (three retries, exponential
    backoff) would hold every question for seconds during an outage. On Python 3.13.0
    writing to a pooled connection that the peer reset raises AttributeError from
    asyncio instead of an OSError, so that is retried on a fresh connection too.
    """
    retryable = (RedisConnectionError, RedisTimeoutError, AttributeError)
    retry = Retry(NoBackoff(), 1, retryable)  # type: ignore[arg-type]
    try:
        return aioredis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=None if blocking_reads else REDIS_TIMEOUT_SECONDS,
            retry=retry,
            decode_responses=decode_responses,
        )
    except ValueError as exc:
        reason = hide_password(str(exc), url)
        raise StartupError(f"REDIS_URL {redact(url)} is not a Redis URL: {reason}") from exc


def hide_password(text: str, url: str) -> str:
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
