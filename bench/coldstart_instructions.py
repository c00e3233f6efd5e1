"""Cold start in instructions, from backend/: coldstart.py's servers, each once under valgrind.

  uv run python ../bench/coldstart_instructions.py [--before DIR]

On a shared machine the CPU seconds of one start vary by a tenth from run to run, more than
most changes to the start-up; the instructions a process executes vary by well under one
percent. Each server runs once under `valgrind --tool=cachegrind --cache-sim=no` (some 20
times slower), started as coldstart.py starts it: the bare app, timed to its first
`/health`; the app (and the backend in DIR), on a migrated SQLite database, to the `done` of
a first question answered by the stand-in provider. It is then stopped, and valgrind's
count of the instructions it executed is printed with the ratio to the bare app's; the
shutdown adds a few million to each. PYTHONHASHSEED is fixed, so runs repeat.
"""

import argparse
import asyncio
import re
from pathlib import Path

from coldstart import compile_bytecode, first_answer, first_health, restarted
from procs import BACKEND, BENCH, child, clean_env, free_port
from servers import UVICORN_FLAGS

VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null")
_INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")


async def instructions(name: str, cwd: Path, env: dict[str, str], work: Path) -> int:
    """What one server executes up to its first answer (the bare one: its first `/health`)."""
    module = "bare_app:app" if name == "bare" else "app.main:app"
    port, counted = free_port(), work / f"{name}.valgrind"
    args = ["-m", "uvicorn", module, "--host", "127.0.0.1", "--port", str(port), *UVICORN_FLAGS]
    wrapper = [*VALGRIND, f"--log-file={counted}"]
    env = env | {"PYTHONHASHSEED": "0"}
    async with child(args, log=work / f"{name}.log", env=env, cwd=cwd, wrapper=wrapper) as server:
        await first_health(f"http://127.0.0.1:{port}/health", server)
        if name != "bare":
            await first_answer(port)
    found = _INSTRUCTIONS.search(counted.read_text())
    if found is None:
        raise RuntimeError(f"valgrind printed no count; see {counted}")
    return int(found[1].replace(",", ""))


async def run(backends: dict[str, Path], out: Path) -> dict[str, int]:
    async with restarted(backends, out) as settings:
        counts = {"bare": await instructions("bare", BENCH, clean_env(), out)}
        for name, backend in backends.items():
            counts[name] = await instructions(name, backend, clean_env(**settings[name]), out)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="another backend/ to compare")
    parser.add_argument(
        "--out", type=Path, default=BENCH / "results" / "coldstart", help="logs go to OUT/logs"
    )
    args = parser.parse_args()
    backends = {"app": BACKEND} | ({"before": args.before.resolve()} if args.before else {})
    compile_bytecode(list(backends.values()))
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    counts = asyncio.run(run(backends, logs))
    print("\n| server | instructions (millions) to first answer | ratio to bare |")
    print("|---|---:|---:|")
    for name, count in counts.items():
        print(f"| {name} | {count / 1e6:,.0f} | {count / counts['bare']:.2f} |")


if __name__ == "__main__":
    main()
