"""Operator commands: `resume-chat purge [--days N]`, `resume-chat eval [...]` (also
`uv run python -m app.cli ...`)."""

import argparse
import asyncio
import sys
from pathlib import Path

from app.core.config import load_settings
from app.core.errors import AppError
from app.db.engine import create_engine, make_database
from app.evaluation.runner import EvalOptions, run_eval
from app.upkeep.retention import purge_idle


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resume-chat",
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
    _add_eval(commands)
    return parser


def _add_eval(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    evaluate = commands.add_parser(
        "eval",
        help="ask the configured model questions about the resume and grade the answers",
        description="Ask the configured model (LLM_MODEL) questions about the resume in "
        "RESUME_PATH through the app itself: facts from the resume, questions it cannot "
        "answer, unrelated tasks, injections and follow-ups. Prints a scorecard; exits 0 at "
        "or above the thresholds, 1 below, 2 when it cannot run. See docs/evaluation.md.",
    )
    evaluate.add_argument("--json", type=Path, metavar="PATH", help="write a JSON report")
    evaluate.add_argument("--markdown", type=Path, metavar="PATH", help="write a Markdown report")
    evaluate.add_argument(
        "--min-pass-rate", type=_share, default=0.85, metavar="SHARE",
        help="share of all answers that must pass, 0 to 1 (default 0.85)",
    )  # fmt: skip
    evaluate.add_argument(
        "--min-category-rate", type=_share, default=0.6, metavar="SHARE",
        help="share of each category's answers that must pass, 0 to 1 (default 0.6)",
    )  # fmt: skip
    evaluate.add_argument(
        "--judge-model", metavar="MODEL",
        help='a model that rules on what the rules only suspect (default EVAL_JUDGE_MODEL; "" '
        "for none)",
    )  # fmt: skip
    evaluate.add_argument("--resume", type=Path, metavar="PATH", help="default RESUME_PATH")
    evaluate.add_argument(
        "--concurrency", type=int, default=4, metavar="N", help="questions asked at once (4)"
    )


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError("a share is between 0 and 1, e.g. 0.85")
    return share


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


def _eval(args: argparse.Namespace) -> int:
    options = EvalOptions(
        json_path=args.json,
        markdown_path=args.markdown,
        min_pass_rate=args.min_pass_rate,
        min_category_rate=args.min_category_rate,
        judge_model=args.judge_model,
        resume_path=args.resume,
        concurrency=max(1, args.concurrency),
    )
    try:
        return run_eval(load_settings(), options)
    except AppError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "eval":
        return _eval(args)
    try:
        return asyncio.run(_purge(args.days))
    except AppError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
