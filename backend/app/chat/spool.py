"""Finished answers the database would not take, kept in a file until it does.

`ANSWER_SPOOL_PATH` is a JSON Lines file of `AnswerRecord`s, appended to and fsynced one
answer at a time. Replaying moves it aside (`.replaying`), stores each record
(idempotently: a question has at most one answer) and deletes it; a replay the database
interrupts leaves the rest for the next. An exclusive lock on `.lock` keeps processes sharing
the file from replaying at once.
"""

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from app.chat.answers import AnswerRecord, store_record
from app.core.errors import StorageUnavailableError
from app.core.logger import get_logger
from app.db.engine import Database

logger = get_logger(__name__)


class AnswerSpool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._replaying = path.with_name(path.name + ".replaying")
        self._lock_path = path.with_name(path.name + ".lock")
        self._appending = asyncio.Lock()

    async def append(self, record: AnswerRecord) -> None:
        """Keep `record` on disk (raises OSError when even that fails)."""
        async with self._appending:
            await asyncio.to_thread(self._append, record.to_json() + "\n")

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as spool:
            spool.write(line)
            spool.flush()
            os.fsync(spool.fileno())

    async def replay(self, database: Database) -> int:
        """Store the spooled answers; how many were stored (not stored before).

        Raises `StorageUnavailableError` when the database fails; what is left stays
        spooled. An answer whose conversation was deleted meanwhile is dropped.
        """
        if not self.path.exists() and not self._replaying.exists():
            return 0
        with self._locked() as locked:
            if not locked:
                return 0
            async with self._appending:
                records = await asyncio.to_thread(self._take)
            stored = 0
            for index, record in enumerate(records):
                try:
                    stored += await store_record(database, record)
                except StorageUnavailableError:
                    await asyncio.to_thread(self._keep, records[index:])
                    raise
            self._replaying.unlink(missing_ok=True)
        if records:
            logger.warning("answer spool: stored %d of %d answer(s)", stored, len(records))
        return stored

    def _keep(self, records: list[AnswerRecord]) -> None:
        """Leave `records` to the next replay (written aside, then moved in place)."""
        pending = self._replaying.with_name(self._replaying.name + ".tmp")
        with pending.open("w", encoding="utf-8") as kept:
            kept.writelines(record.to_json() + "\n" for record in records)
            kept.flush()
            os.fsync(kept.fileno())
        os.replace(pending, self._replaying)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _take(self) -> list[AnswerRecord]:
        """The records to replay: a failed replay's first, then what was spooled since."""
        taking = self.path.with_name(self.path.name + ".taking")
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, taking)  # appends from now on start a new spool
        if taking.exists():
            with self._replaying.open("a", encoding="utf-8") as replaying:
                replaying.write(taking.read_text(encoding="utf-8"))
                replaying.flush()
                os.fsync(replaying.fileno())
            taking.unlink()
        records: list[AnswerRecord] = []
        for number, line in enumerate(self._replaying.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                records.append(AnswerRecord.from_json(line))
            except (ValueError, TypeError, KeyError) as exc:  # a line torn by a crash
                logger.error("answer spool: line %d cannot be read (%s); skipped", number + 1, exc)
        return records
