"""`run.py --profile`: py-spy samples the app during each chat load; `top()` sums the samples.

py-spy attaches to the running app (every worker) and writes collapsed stacks
(`frame;frame;... count`), one file per level. Only threads that are running are
sampled, so a share of the samples is a share of the app's CPU time; time in C under
the event loop (uvloop, socket writes) shows as `Runner.run`. Sampling pauses the app
briefly, so latencies of a profiled run are not figures.
`uv run python ../bench/profiling.py FILE` prints the summary of a file again.
"""

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

RATE_HZ = 100
# Where a sample's innermost frame lives, by path, most specific first.
AREAS = (
    ("app", "app/"),
    ("uvicorn websockets", "uvicorn/protocols/websockets"),
    ("uvicorn http", "uvicorn/protocols/http"),
    ("websockets (lib)", "websockets/"),
    ("starlette/fastapi", "starlette/"),
    ("starlette/fastapi", "fastapi/"),
    ("httpx_sse", "httpx_sse/"),
    ("httpx/httpcore/h11", "httpx/"),
    ("httpx/httpcore/h11", "httpcore/"),
    ("httpx/httpcore/h11", "h11/"),
    ("anyio", "anyio/"),
    ("pydantic", "pydantic"),
    ("sqlalchemy", "sqlalchemy/"),
    ("asyncpg", "asyncpg/"),
    ("tenacity", "tenacity/"),
    ("tiktoken", "tiktoken"),
    ("prometheus", "prometheus_client/"),
    ("logging", "logging/"),
    ("json", "json/"),
    ("event loop (C, uvloop)", "asyncio/runners.py"),
    ("asyncio", "asyncio/"),
)
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


@asynccontextmanager
async def sampled(pid: int, out: Path) -> AsyncIterator[None]:
    """Sample `pid` and its children into `out` while the block runs."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        _spy(), "record", "--pid", str(pid), "--subprocesses", "--gil",
        "--format", "raw", "--rate", str(RATE_HZ), "--output", str(out),
    ]  # fmt: skip
    devnull = asyncio.subprocess.DEVNULL
    spy = await asyncio.create_subprocess_exec(*command, stdout=devnull, stderr=devnull)
    await asyncio.sleep(1.0)  # attached before the load starts
    try:
        yield
    finally:
        if spy.returncode is None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        await spy.wait()


@asynccontextmanager
async def profiled(out: Path | None, pid: int, n: int) -> AsyncIterator[None]:
    """With `out` (the results folder), sample the block into profiles/app-<n>.txt and
    print its summary; without, nothing."""
    if out is None:
        yield
        return
    path = out / "profiles" / f"app-{n}.txt"
    async with sampled(pid, path):
        yield
    print(top(path, limit=15), flush=True)


def _stacks(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            kept = [f for f in frames.split(";") if not f.startswith("process ")]
            stacks[tuple(kept or ["(process)"])] += int(count)
    return stacks


def _area(frame: str) -> str:
    match = _FRAME.match(frame)
    where = match["file"] if match else frame
    return next((name for name, part in AREAS if where.startswith(part)), "other")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"].split("site-packages/")[-1].split("/backend/")[-1]
    return f"{match['name']} ({file})"


def top(path: Path, limit: int = 25) -> str:
    """Self time by area and by function, and inclusive time by function, in percent."""
    stacks = _stacks(path)
    total = sum(stacks.values()) or 1
    areas: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks.items():
        areas[_area(frames[-1])] += count
        own[_short(frames[-1])] += count
        for name in {_short(frame) for frame in frames}:
            inclusive[name] += count
    lines = [f"{path.name}: {total} samples at {RATE_HZ} Hz"]
    for title, counts in (("self, by area", areas), ("self", own), ("inclusive", inclusive)):
        lines.append(f"-- {title}")
        lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in counts.most_common(limit)]
    return "\n".join(lines)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(top(Path(name)))
