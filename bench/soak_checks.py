"""What the soak checks afterwards: stored turns, the app's memory trend, database connections."""

import asyncio
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import procstat
from soak_visitors import Tally

TURNS_SQL = (
    "SELECT conversation_id, role, finish_reason, error_code FROM messages"
    " ORDER BY conversation_id, id"
)


def plain_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def stored_messages(database_url: str) -> list[tuple[Any, ...]]:
    """Every message's conversation, role and ending, straight from the database."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]

        def read() -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as connection:
                return connection.execute(TURNS_SQL).fetchall()

        return await asyncio.to_thread(read)
    connection = await asyncpg.connect(plain_url(database_url))
    try:
        return [tuple(row) for row in await connection.fetch(TURNS_SQL)]
    finally:
        await connection.close()


def audit(messages: list[tuple[Any, ...]], tally: Tally) -> dict[str, Any]:
    """Every accepted question stored once, each with an answer or a stored failure."""
    sessions: dict[str, list[tuple[str, str | None, str | None]]] = defaultdict(list)
    for conversation, role, finish_reason, error_code in messages:
        sessions[str(uuid.UUID(str(conversation)))].append((role, finish_reason, error_code))
    unanswered = orphans = missing = extra = 0
    endings: Counter[str] = Counter()
    for session in set(sessions) | set(tally.accepted):
        rows = sessions.get(session, [])
        questions = sum(1 for role, _, _ in rows if role == "user")
        for before, (role, reason, error) in zip([None, *rows], rows, strict=False):
            if role == "assistant":
                endings[error or reason or "none"] += 1
                orphans += before is None or before[0] != "user"
            elif before is not None and before[0] == "user":
                unanswered += 1
        unanswered += bool(rows) and rows[-1][0] == "user"
        low, high = tally.accepted[session], tally.accepted[session] + tally.unknown[session]
        missing += max(0, low - questions)
        extra += max(0, questions - high)
    stored = sum(1 for row in messages if row[1] == "user")
    return {
        "sessions": len(sessions),
        "questions_stored": stored,
        "answers_stored_by_ending": dict(endings.most_common()),
        "unanswered_questions": unanswered,
        "accepted_but_not_stored": missing,
        "stored_more_than_accepted": extra,
        "answers_without_question": orphans,
        "lost_turns": unanswered + missing,
    }


async def pg_connections(admin_url: str, database: str) -> dict[str, int]:
    """The app's connections to the throwaway database, by state (idle, active...)."""
    connection = await asyncpg.connect(plain_url(admin_url))
    try:
        rows = await connection.fetch(
            "SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity"
            " WHERE datname = $1 GROUP BY 1",
            database,
        )
    finally:
        await connection.close()
    return {row["state"]: row["n"] for row in rows}


@dataclass
class RssTrend:
    """The app's process tree RSS every `interval` seconds, for its slope."""

    root: int
    interval: float
    samples: list[tuple[float, int]] = field(default_factory=list)

    async def run(self) -> None:
        start = time.monotonic()
        while True:
            rss = procstat.tree_rss(self.root)
            if rss:
                self.samples.append((time.monotonic() - start, rss))
            await asyncio.sleep(self.interval)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"samples": 0}
        second_half = self.samples[len(self.samples) // 2 :]
        mb = [rss / 2**20 for _, rss in self.samples]
        return {
            "samples": len(self.samples),
            "start_mb": round(mb[0], 1),
            "end_mb": round(mb[-1], 1),
            "peak_mb": round(max(mb), 1),
            "slope_kb_per_min_second_half": round(slope_per_s(second_half) * 60 / 1024, 1),
        }


def slope_per_s(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, bytes): bytes per second."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if not spread:
        return 0.0
    return sum((t - mean_t) * (y - mean_y) for t, y in samples) / spread


def markdown(report: dict[str, Any]) -> str:
    load, db, rss = report["load"], report["database_check"], report["rss"]
    connections = report["db_connections"]
    lines = [
        f"# Soak: {report['verdict']}",
        "",
        f"{report['duration_s']} s, {report['config']['visitors']} visitors, "
        f"{report['config']['database']}, provider fault rate {report['config']['fault_rate']}, "
        f"started {report['started_at']}.",
        "",
        "| Figure | Value |",
        "| --- | --- |",
        f"| questions asked | {load['asked']} |",
        *(f"| {name} | {count} |" for name, count in load["outcomes"].items()),
        f"| client failures | {load['client_failures'] or 'none'} |",
        f"| questions stored | {db['questions_stored']} in {db['sessions']} sessions |",
        f"| answers stored, by ending | {db['answers_stored_by_ending']} |",
        f"| lost turns | {db['lost_turns']} (unanswered {db['unanswered_questions']}, "
        f"accepted but not stored {db['accepted_but_not_stored']}) |",
        f"| stored more than accepted | {db['stored_more_than_accepted']} |",
        f"| app RSS | {rss.get('start_mb')} → {rss.get('end_mb')} MB (peak {rss.get('peak_mb')}) |",
        f"| RSS slope, second half | {rss.get('slope_kb_per_min_second_half')} KB/min |",
        f"| DB connections at the end | {connections} |",
    ]
    return "\n".join(lines) + "\n"
