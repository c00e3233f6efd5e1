"""Operator commands: `uv run python -m app.cli purge [--days N]`."""

import argparse
import asyncio
import sys

from app.core.config import load_settings
from app.core.errors import AppError
from app.db.engine import create_engine, make_database
from app.upkeep.retention import purge_idle


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.cli",
        description="Operator commands for the resume chatbot, on the database in DATABASE_URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    purge = commands.add_parser(
        "purge",
        help="delete conversations idle for longer than the retention period",
        description="Delete, for good, conversations (and their messages) last active "
        "more than N days ago.",
    )
    purge.add_argument(
        "--days",
        type=_days,
        metavar="N",
        help="idle days before a conversation is deleted (default: RETENTION_DAYS)",
    )
    return parser


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if days < 0:
        raise argparse.ArgumentTypeError("days cannot be negative")
    return days


async def _purge(days: int | None) -> int:
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_purge(args.days))
    except AppError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
