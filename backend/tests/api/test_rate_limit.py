import asyncio
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import pytest
import redis.asyncio as aioredis

from app.core.config import Settings
from app.core.errors import RateLimitedError, StartupError, StorageUnavailableError
from app.limits.limiter import RateLimiter
from tests.support.fault_proxy import FaultProxy

LimiterFactory = Callable[..., Awaitable[RateLimiter]]

LOOSE = {
    "rate_limit_questions_per_ip": "100/minute",
    "rate_limit_questions_per_session": "100/minute",
    "rate_limit_new_sessions_per_ip": "100/minute",
}


def settings(redis_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {**LOOSE, "redis_url": redis_url, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def delete_keys(url: str, pattern: str) -> None:
    client = aioredis.Redis.from_url(url)
    async with client:
        keys = [key async for key in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(*keys)


@pytest.fixture
def prefix() -> str:
    return f"resume-chat-test:{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(
    request: pytest.FixtureRequest, prefix: str
) -> AsyncIterator[LimiterFactory]:
    """Limiters on one storage; on Redis, all made in one test share it (like two processes)."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    made: list[RateLimiter] = []

    async def make(**overrides: object) -> RateLimiter:
        limiter = await RateLimiter.create(settings(url, **overrides), key_prefix=prefix)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()
    if url:
        await delete_keys(url, f"{prefix}:*")


async def refused(check: Awaitable[None]) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as info:
        await check
    assert info.value.code == "rate_limited"
    return info.value


async def test_storage_name_and_ping(
    make_limiter: LimiterFactory, request: pytest.FixtureRequest
) -> None:
    limiter = await make_limiter()
    assert limiter.storage_name == request.node.callspec.params["make_limiter"]
    assert await limiter.ping()


async def test_question_limit_refuses_the_next_question(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(rate_limit_questions_per_ip="3/minute")
    for _ in range(3):
        await limiter.check_question("203.0.113.7", "s1")
    error = await refused(limiter.check_question("203.0.113.7", "s1"))
    assert error.retry_after is not None
    assert 55 <= error.retry_after <= 60
    assert (
        error.message
        == f"You are asking questions too quickly. Please wait {error.retry_after} seconds."
    )
    await limiter.check_question("203.0.113.8", "s2")  # another IP is not affected


async def test_session_limit_is_per_session(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(rate_limit_questions_per_session="2/minute")
    await limiter.check_question("203.0.113.7", "a")
    await limiter.check_question("203.0.113.7", "a")
    await refused(limiter.check_question("203.0.113.7", "a"))
    await limiter.check_question("203.0.113.7", "b")
    await limiter.check_question("203.0.113.7", "b")


async def test_new_session_does_not_reset_the_ip_limit(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(rate_limit_questions_per_ip="3/minute")
    for session in ("a", "b", "c"):
        await limiter.check_new_session("203.0.113.7")
        await limiter.check_question("203.0.113.7", session)
    await limiter.check_new_session("203.0.113.7")
    await refused(limiter.check_question("203.0.113.7", "d"))


async def test_refused_question_consumes_no_other_limit(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(
        rate_limit_questions_per_ip="3/minute", rate_limit_questions_per_session="2/minute"
    )
    await limiter.check_question("203.0.113.7", "a")
    await limiter.check_question("203.0.113.7", "a")
    for _ in range(3):  # refused by the session limit; the IP's third question is untouched
        await refused(limiter.check_question("203.0.113.7", "a"))
    await limiter.check_question("203.0.113.7", "b")
    await refused(limiter.check_question("203.0.113.7", "b"))


async def test_short_window_refuses_then_resets(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(rate_limit_questions_per_ip="2/second;3/hour")
    await limiter.check_question("203.0.113.7", "a")
    await limiter.check_question("203.0.113.7", "a")
    error = await refused(limiter.check_question("203.0.113.7", "a"))
    assert error.retry_after == 1
    assert error.message.endswith("Please wait 1 second.")
    await asyncio.sleep(1.1)
    # The refusal above did not spend the hourly allowance: one question is left.
    await limiter.check_question("203.0.113.7", "a")
    error = await refused(limiter.check_question("203.0.113.7", "a"))
    assert error.retry_after is not None
    assert 3590 <= error.retry_after <= 3600
    assert error.message.endswith("Please wait 60 minutes.")


async def test_new_session_limit(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(rate_limit_new_sessions_per_ip="2/minute")
    await limiter.check_new_session("2001:db8::1")
    await limiter.check_new_session("2001:db8::1")
    error = await refused(limiter.check_new_session("2001:db8::1"))
    assert error.retry_after is not None
    assert 55 <= error.retry_after <= 60
    assert error.message.startswith("You are starting new chats too quickly.")
    await limiter.check_new_session("2001:db8::2")


async def test_connection_cap_refuses_then_frees(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(max_connections_per_ip=2)
    async with limiter.connection("203.0.113.7"), limiter.connection("203.0.113.7"):
        error = await refused(limiter.connection("203.0.113.7").__aenter__())
        assert error.message == "Too many open chats from your network. Close one and try again."
        async with limiter.connection("203.0.113.8"):
            pass
    async with limiter.connection("203.0.113.7"), limiter.connection("203.0.113.7"):
        pass


async def test_connection_slot_freed_after_error_and_cancel(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(max_connections_per_ip=1)
    with pytest.raises(RuntimeError):
        async with limiter.connection("203.0.113.7"):
            raise RuntimeError("socket broke")
    async with limiter.connection("203.0.113.7"):
        pass

    entered = asyncio.Event()

    async def hold() -> None:
        async with limiter.connection("203.0.113.7"):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    async with asyncio.timeout(2):
        await entered.wait()
    await refused(limiter.connection("203.0.113.7").__aenter__())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with limiter.connection("203.0.113.7"):
        pass


async def test_stream_slot_cap(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter(max_concurrent_streams=1)
    async with limiter.stream_slot():
        error = await refused(limiter.stream_slot().__aenter__())
        assert error.retry_after == 2
    async with limiter.stream_slot():
        pass


async def test_two_instances_share_one_limit(redis_url: str, prefix: str) -> None:
    overrides = {"rate_limit_questions_per_ip": "3/minute", "max_connections_per_ip": 2}
    first = await RateLimiter.create(settings(redis_url, **overrides), key_prefix=prefix)
    second = await RateLimiter.create(settings(redis_url, **overrides), key_prefix=prefix)
    try:
        await first.check_question("203.0.113.7", "a")
        await second.check_question("203.0.113.7", "b")
        await first.check_question("203.0.113.7", "c")
        await refused(second.check_question("203.0.113.7", "d"))
        await refused(first.check_question("203.0.113.7", "e"))

        async with first.connection("203.0.113.7"):
            async with second.connection("203.0.113.7"):
                await refused(first.connection("203.0.113.7").__aenter__())
            async with first.connection("203.0.113.7"):
                await refused(second.connection("203.0.113.7").__aenter__())
    finally:
        await first.close()
        await second.close()
        await delete_keys(redis_url, f"{prefix}:*")


async def test_redis_keys_are_prefixed_with_a_safety_ttl(redis_url: str) -> None:
    ip = f"test-{uuid.uuid4().hex}"
    limiter = await RateLimiter.create(
        settings(redis_url, rate_limit_questions_per_ip="10/minute;60/hour")
    )
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    slots = f"resume-chat:leases:connections:{ip}"
    try:
        await limiter.check_question(ip, f"session-{ip}")
        async with limiter.connection(ip):
            ttl = await client.ttl(slots)  # twice the lease (SLOT_LEASE_SECONDS=30)
            assert 55 <= ttl <= 60
            leases = await client.zrange(slots, 0, -1, withscores=True)
            [(_, ends_at)] = cast(list[tuple[str, float]], leases)
            now, _microseconds = await client.time()
            assert now + 25 <= ends_at / 1000 <= now + 31  # a lease, in Redis server time
        assert not await client.exists(slots)
        keys = [key async for key in client.scan_iter(match=f"*{ip}*")]
        assert len(keys) == 3  # two per-IP windows and one per-session window
        assert all(key.startswith("resume-chat:") for key in keys)
    finally:
        await limiter.close()
        await delete_keys(redis_url, f"resume-chat:*{ip}*")
        await client.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_create_with_unreachable_redis_names_url_without_password() -> None:
    """Failing closed, an app whose Redis does not answer refuses to start."""
    port = closed_port()
    url = f"redis://app:s3cret-pw@127.0.0.1:{port}/0"
    with pytest.raises(StartupError) as info:
        await RateLimiter.create(settings(url, rate_limit_fail_open=False))
    assert f"redis://app:***@127.0.0.1:{port}/0" in info.value.message
    assert "RATE_LIMIT_FAIL_OPEN is false" in info.value.message
    assert "s3cret-pw" not in str(info.value)


async def test_create_with_a_non_redis_url() -> None:
    with pytest.raises(StartupError, match="REDIS_URL http://x:\\*\\*\\*@host/ is not a Redis URL"):
        await RateLimiter.create(settings("http://x:s3cret-pw@host/"))


async def test_redis_outage_fails_closed_and_ping_reports_it(prefix: str, redis_url: str) -> None:
    with FaultProxy.in_front_of(redis_url) as proxy:
        limiter = await RateLimiter.create(
            settings(proxy.url(redis_url), rate_limit_fail_open=False), key_prefix=prefix
        )
        try:
            await limiter.check_question("203.0.113.7", "a")
            proxy.cut()
            assert not await limiter.ping()
            with pytest.raises(StorageUnavailableError):
                await limiter.check_question("203.0.113.7", "a")
            with pytest.raises(StorageUnavailableError):
                await limiter.connection("203.0.113.7").__aenter__()
            proxy.restore()
            await limiter.check_question("203.0.113.7", "a")  # back without a restart
        finally:
            await limiter.close()
            await delete_keys(redis_url, f"{prefix}:*")


async def eventually(condition: Callable[[], bool], seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


async def test_redis_outage_fails_open_to_the_same_limits_in_memory_then_back(
    prefix: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ip = "203.0.113.7"
    caplog.set_level(logging.INFO, logger="app.limits.limiter")
    with FaultProxy.in_front_of(redis_url) as proxy:
        limiter = await RateLimiter.create(
            settings(proxy.url(redis_url), rate_limit_questions_per_ip="2/minute"),
            key_prefix=prefix,
        )
        try:
            await limiter.check_question(ip, "a")  # counted on Redis
            proxy.cut()
            await limiter.check_question(ip, "b")  # counted in memory, from zero
            await limiter.check_question(ip, "c")
            await refused(limiter.check_question(ip, "d"))
            async with limiter.connection(ip), limiter.stream_slot():
                assert limiter.on_fallback
            proxy.restore()
            await eventually(lambda: not limiter.on_fallback)
            await limiter.check_question(ip, "e")  # Redis had one question: one left
            await refused(limiter.check_question(ip, "f"))
        finally:
            await limiter.close()
            await delete_keys(redis_url, f"{prefix}:*")
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [m for level, m in messages if level == "WARNING"]
    assert len(warnings) == 1, messages
    assert "unreachable" in warnings[0]
    assert "RATE_LIMIT_FAIL_OPEN=true" in warnings[0]
    assert sum("answers again" in m for level, m in messages if level == "INFO") == 1


async def test_a_slot_released_during_an_outage_is_given_back_when_redis_returns(
    prefix: str, redis_url: str
) -> None:
    with FaultProxy.in_front_of(redis_url) as proxy:
        limiter = await RateLimiter.create(
            settings(proxy.url(redis_url), max_connections_per_ip=1), key_prefix=prefix
        )
        try:
            async with limiter.connection("203.0.113.7"):
                proxy.cut()  # the visitor leaves while Redis is away
            proxy.restore()
            async with limiter.connection("203.0.113.7"):  # not refused: the slot was freed
                pass
        finally:
            await limiter.close()
            await delete_keys(redis_url, f"{prefix}:*")


async def test_failing_open_an_app_starts_while_redis_is_down_and_moves_to_it_later(
    prefix: str, redis_url: str
) -> None:
    with FaultProxy.in_front_of(redis_url) as proxy:
        proxy.cut()
        limiter = await RateLimiter.create(settings(proxy.url(redis_url)), key_prefix=prefix)
        try:
            assert limiter.on_fallback
            assert not await limiter.ping()
            await limiter.check_question("203.0.113.7", "a")
            proxy.restore()
            await eventually(lambda: not limiter.on_fallback)
            assert await limiter.ping()
        finally:
            await limiter.close()
            await delete_keys(redis_url, f"{prefix}:*")


LEASE = 1.0  # SLOT_LEASE_SECONDS in the lease tests: renewed every third of a second


async def test_slots_of_a_limiter_that_stopped_renewing_free_after_one_lease(
    redis_url: str, prefix: str
) -> None:
    overrides = {"max_connections_per_ip": 1, "max_concurrent_streams": 1}
    lease = {"slot_lease_seconds": LEASE}
    dead = await RateLimiter.create(settings(redis_url, **overrides, **lease), key_prefix=prefix)
    alive = await RateLimiter.create(settings(redis_url, **overrides, **lease), key_prefix=prefix)
    held = [dead.connection("203.0.113.7"), dead.stream_slot()]  # never left: kept referenced
    try:
        for slot in held:
            await slot.__aenter__()
        await dead.close()  # like kill -9: no release, and no more renewals
        await refused(alive.connection("203.0.113.7").__aenter__())
        await refused(alive.stream_slot().__aenter__())
        await asyncio.sleep(LEASE + 0.2)
        async with alive.connection("203.0.113.7"), alive.stream_slot():
            pass
    finally:
        for slot in held:  # so no release runs later, from the garbage collector
            await slot.__aexit__(None, None, None)
        await dead.close()
        await alive.close()
        await delete_keys(redis_url, f"{prefix}:*")


async def test_a_live_limiter_keeps_its_slots_even_if_redis_forgets_them(
    redis_url: str, prefix: str
) -> None:
    overrides = {"max_connections_per_ip": 1, "slot_lease_seconds": LEASE}
    holder = await RateLimiter.create(settings(redis_url, **overrides), key_prefix=prefix)
    other = await RateLimiter.create(settings(redis_url, **overrides), key_prefix=prefix)
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with holder.connection("203.0.113.7"):
            for _ in range(4):  # four leases long
                await asyncio.sleep(LEASE)
                await refused(other.connection("203.0.113.7").__aenter__())
            await client.delete(f"{prefix}:leases:connections:203.0.113.7")  # Redis restarted
            await asyncio.sleep(LEASE)  # the next renewal puts it back
            await refused(other.connection("203.0.113.7").__aenter__())
        async with other.connection("203.0.113.7"):  # released at once, not a lease later
            pass
    finally:
        await holder.close()
        await other.close()
        await client.aclose()
        await delete_keys(redis_url, f"{prefix}:*")
