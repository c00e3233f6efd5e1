"""CPU time and resident memory of process trees, read from /proc (Linux only)."""

import asyncio
import os
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    name: str
    cpu_s: float
    rss_bytes: int
    reaped_cpu_s: float = 0.0  # of its children that have exited and been waited for


def read_stat(pid: int) -> Stat | None:
    """One process's /proc/<pid>/stat; None once it has gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    utime, stime, rss_pages = int(fields[11]), int(fields[12]), int(fields[21])
    reaped = int(fields[13]) + int(fields[14])  # cutime, cstime
    return Stat(
        pid, int(fields[1]), name, (utime + stime) / TICKS, rss_pages * PAGE, reaped / TICKS
    )


def all_stats() -> Iterator[Stat]:
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            yield stat


def tree(root: int) -> list[Stat]:
    """`root` and every descendant still running."""
    stats = list(all_stats())
    children: dict[int, list[Stat]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    found = [stat for stat in stats if stat.pid == root]
    for stat in found:  # grows while it is walked: breadth first
        found.extend(children.get(stat.pid, []))
    return found


def tree_cpu_s(root: int) -> float:
    return sum(stat.cpu_s for stat in tree(root))


def tree_rss(root: int) -> int:
    return sum(stat.rss_bytes for stat in tree(root))


def named_cpu_s(name: str) -> float:
    """CPU of every process called `name` (PostgreSQL's backends are not our children),
    and of those that have exited: a backend whose connection closed takes its own CPU
    out of /proc, and the postmaster, which reaps it, counts it as its children's."""
    return sum(stat.cpu_s + stat.reaped_cpu_s for stat in all_stats() if stat.name == name)


@dataclass
class RssSampler:
    """Samples a tree's RSS every `interval` seconds while its `run()` task lives."""

    root: int
    interval: float = 0.1
    peak: int = 0
    samples: list[int] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            with suppress(OSError):
                rss = tree_rss(self.root)
                self.samples.append(rss)
                self.peak = max(self.peak, rss)
            await asyncio.sleep(self.interval)
