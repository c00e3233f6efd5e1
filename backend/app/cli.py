"""The `resume-chat` command: `serve` the app, `purge` old conversations, `eval` its answers.

`uv run resume-chat serve` (or `python -m app.cli serve`). Each subcommand is one
`Command` in `COMMANDS`: a name, help, its arguments and a function that returns the
exit code. Adding one, say `eval`, is a `Command` in its own package and one line here.
Commands import what they need when they run, so a bad setting is reported at once
rather than after every module of the app has loaded.
"""

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.config import load_settings
from app.core.errors import AppError
from app.core.redact import redact


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT, 8000)")
    parser.add_argument("--workers", type=_positive, default=1, help="processes (default: 1)")
    parser.add_argument(
        "--reload", action="store_true", help="restart when the code changes (development)"
    )
    parser.add_argument(
        "--ws-ping-interval", type=float, default=20.0, help="seconds between WebSocket pings"
    )
    parser.add_argument(
        "--ws-ping-timeout", type=float, default=20.0, help="seconds to wait for a pong"
    )
    parser.add_argument("--log-config", help="a logging configuration file for uvicorn")


def _serve(args: argparse.Namespace) -> int:
    from app.server import ServeOptions, serve

    options = ServeOptions(
        host=args.host,
        port=args.port,
        workers=args.workers,
        reload=args.reload,
        ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        log_config=args.log_config,
    )
    serve(load_settings(), options)
    return 0


def _purge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days",
        type=_days,
        metavar="N",
        help="idle days before a conversation is deleted (default: RETENTION_DAYS)",
    )


def _purge(args: argparse.Namespace) -> int:
    return asyncio.run(_purge_idle(args.days))


async def _purge_idle(days: int | None) -> int:
    from app.db.engine import create_engine, make_database
    from app.upkeep.retention import purge_idle

    settings = load_settings()
    days = settings.retention_days if days is None else days
    if days == 0:
        print(
            "Nothing to do: RETENTION_DAYS is 0 (keep conversations forever). "
            "Pass --days N to delete conversations idle for more than N days.",
            file=sys.stderr,
        )
        return 2
    engine = create_engine(settings)
    try:
        deleted = await purge_idle(make_database(engine), days)
    finally:
        await engine.dispose()
    print(
        f"Deleted {deleted} conversation{'' if deleted == 1 else 's'} idle for more than "
        f"{days} day{'' if days == 1 else 's'}."
    )
    return 0


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="PATH", help="write a JSON report")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write a Markdown report")
    parser.add_argument(
        "--min-pass-rate", type=_share, default=0.85, metavar="SHARE",
        help="share of all answers that must pass, 0 to 1 (default 0.85)",
    )  # fmt: skip
    parser.add_argument(
        "--min-category-rate", type=_share, default=0.6, metavar="SHARE",
        help="share of each category's answers that must pass, 0 to 1 (default 0.6)",
    )  # fmt: skip
    parser.add_argument(
        "--judge-model", metavar="MODEL",
        help='a model that rules on what the rules only suspect (default EVAL_JUDGE_MODEL; "" '
        "for none)",
    )  # fmt: skip
    parser.add_argument("--resume", type=Path, metavar="PATH", help="default RESUME_PATH")
    parser.add_argument(
        "--concurrency", type=_positive, default=4, metavar="N", help="questions asked at once (4)"
    )


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError("a share is between 0 and 1, e.g. 0.85")
    return share


def _eval(args: argparse.Namespace) -> int:
    from app.evaluation.runner import EvalOptions, run_eval

    options = EvalOptions(
        json_path=args.json,
        markdown_path=args.markdown,
        min_pass_rate=args.min_pass_rate,
        min_category_rate=args.min_category_rate,
        judge_model=args.judge_model,
        resume_path=args.resume,
        concurrency=args.concurrency,
    )
    try:
        return run_eval(load_settings(), options)
    except AppError as exc:
        print(f"Error: {redact(exc.message)}", file=sys.stderr)
        return 2


COMMANDS: tuple[Command, ...] = (
    Command(
        "serve",
        "run the chat service",
        "Serve the app with uvicorn, with safe settings: forwarded headers believed only "
        "from TRUSTED_PROXIES, WebSocket messages capped near WS_MAX_FRAME_BYTES and not "
        "compressed, request headers bounded in size and time (HTTP_HEADER_TIMEOUT).",
        _serve_arguments,
        _serve,
    ),
    Command(
        "purge",
        "delete conversations idle for longer than the retention period",
        "Delete, for good, conversations (and their messages) last active more than N "
        "days ago, on the database in DATABASE_URL. Exit code 2: nothing to do.",
        _purge_arguments,
        _purge,
    ),
    Command(
        "eval",
        "ask the configured model questions about the resume and grade the answers",
        "Ask the configured model (LLM_MODEL) questions about the resume in RESUME_PATH "
        "through the app itself: facts from the resume, questions it cannot answer, unrelated "
        "tasks, injections and follow-ups. Prints a scorecard; exits 0 at or above the "
        "thresholds, 1 below, 2 when it cannot run. See docs/evaluation.md.",
        _eval_arguments,
        _eval,
    ),
)


def _parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resume-chat", description="The resume chatbot: serve it, look after its data."
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        sub = subcommands.add_parser(
            command.name, help=command.help, description=command.description
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if days < 0:
        raise argparse.ArgumentTypeError("days cannot be negative")
    return days


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def main(argv: list[str] | None = None) -> int:
    args = _parser(COMMANDS).parse_args(argv)
    try:
        code: int = args.run(args)
    except AppError as exc:
        print(f"Error: {redact(exc.message)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
