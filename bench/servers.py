"""What a run starts: the stand-in provider's and the app's command lines and settings."""

import argparse
import uuid

ORIGIN = "http://127.0.0.1:8080"
UNLIMITED = "1000000/minute"
NO_BUDGET = str(10**12)  # budgets still checked, as in production, but never reached
# The production-recommended server flags (bench/PERFORMANCE.md): uvloop and httptools named
# rather than left to `auto`, the sans-I/O websockets implementation, and no
# permessage-deflate (chat frames are small; compressing each costs CPU for little).
# `resume-chat serve` sets them itself; they are for runs with `--uvicorn-arg`.
UVICORN_FLAGS = (
    "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio",
    "--ws-per-message-deflate", "false", "--no-proxy-headers", "--log-level", "warning",
)  # fmt: skip


def app_settings(args: argparse.Namespace, sessions: int, db: str, provider: str) -> dict[str, str]:
    """Production settings, with every limit raised above what the level can reach."""
    cap = str(max(2 * sessions, 10))
    settings = {
        "OPENROUTER_BASE_URL": provider,
        "OPENROUTER_API_KEY": "bench-not-a-key",
        "DATABASE_URL": db,
        "MIGRATE_ON_STARTUP": "false",  # run.py migrates once, before the workers start
        "RATE_LIMIT_QUESTIONS_PER_IP": UNLIMITED,
        "RATE_LIMIT_QUESTIONS_PER_SESSION": UNLIMITED,
        "RATE_LIMIT_NEW_SESSIONS_PER_IP": UNLIMITED,
        "MAX_CONNECTIONS_PER_IP": cap,
        "MAX_CONCURRENT_STREAMS": cap,
        "LLM_MAX_CONNECTIONS": str(max(200, 2 * sessions)),
        "BUDGET_TOKENS_PER_SESSION": NO_BUDGET,
        "BUDGET_TOKENS_PER_IP_PER_DAY": NO_BUDGET,
        "BUDGET_TOKENS_PER_DAY": NO_BUDGET,
        "MAX_TURNS_PER_SESSION": str(max(50, args.questions)),
        "WS_IDLE_TIMEOUT": "3600",
        "ALLOWED_ORIGINS": ORIGIN,
        "LOG_LEVEL": "WARNING",
    }
    pool = {"DATABASE_POOL_SIZE": str(args.db_pool_size)} if args.db_pool_size else {}
    return settings | pool | _redis(args.redis)


def _redis(url: str | None) -> dict[str, str]:
    """No Redis (one instance's own state), or Redis under a key prefix of this run's own."""
    if not url:
        return {"REDIS_URL": ""}
    return {"REDIS_URL": url, "REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:12]}"}


def provider_args(args: argparse.Namespace, port: int) -> list[str]:
    return [
        "-m", "devtools.fake_llm", "--port", str(port), "--tokens", str(args.tokens),
        "--first-token-delay", str(args.first_token_ms / 1000),
        "--token-delay", str(1 / args.tokens_per_second),
    ]  # fmt: skip


def app_args(args: argparse.Namespace, port: int) -> list[str]:
    """Python's arguments for the app: `resume-chat serve` (`-m app.cli serve`, the same code).

    With `--uvicorn-arg`, plain uvicorn with the production flags plus those, to try
    server flags that `resume-chat serve` does not take.
    """
    where = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    if args.uvicorn_arg:
        return ["-m", "uvicorn", "app.main:app", *where, *UVICORN_FLAGS, *args.uvicorn_arg]
    return ["-m", "app.cli", "serve", *where]


def shown(python_args: list[str]) -> str:
    """The command line a person would type for `python_args`."""
    return " ".join(python_args[1:]).replace("app.cli serve", "resume-chat serve")
