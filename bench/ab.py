"""Before against after in one command, from backend/, on a shared (noisy) machine.

  uv run python ../bench/ab.py --before REF [--rounds 2] [-- run.py options...]

Exports commit REF of this repository (`git archive`) to a temporary folder and runs
`run.py` alternately on it and on the working tree (or on `--after REF`, exported too),
`--rounds` times each, with the same options and the same virtual environment (each
tree's `app` is imported from its own backend/). Both sides read CPU and memory with this
tree's `procstat.py`, so an older commit is not measured by an older reading.
Alternating spreads the machine's other load over both sides. Prints every round's
figures side by side and the median of each; each run's results go to `--out`/before-<i>
and after-<i>.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procs import BACKEND, BENCH

REPO = BACKEND.parent
FIGURES: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("server CPU ms/answer", lambda lv: lv["server"]["cpu_ms_per_answer"]),
    ("PostgreSQL CPU ms/answer", lambda lv: lv["server"]["db_cpu_ms_per_answer"]),
    ("answers/s ratio to floor", lambda lv: lv["throughput_ratio"]),
    ("first chunk overhead p50 ms", lambda lv: lv["overhead_ms"]["first"]["p50"]),
    ("first chunk overhead p99 ms", lambda lv: lv["overhead_ms"]["first"]["p99"]),
    ("connect→session p50 ms", lambda lv: lv["app"]["connect_ms"]["p50"]),
    ("errors", lambda lv: sum(lv["app"]["errors"].values())),
)


def export(ref: str, into: Path) -> Path:
    into.mkdir()
    git = ["git", "-C", str(REPO), "archive", ref]
    archive = subprocess.run(git, check=True, capture_output=True).stdout  # noqa: S603
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)  # noqa: S603, S607
    shutil.copyfile(BENCH / "procstat.py", into / "bench" / "procstat.py")
    return into


def run_once(tree: Path, out: Path, options: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(tree / "bench" / "run.py"), "--out", str(out), *options]
    subprocess.run(command, cwd=tree / "backend", check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    results: dict[str, Any] = json.loads((out / "latest.json").read_text())
    return results


def table(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> str:
    lines = ["| sessions | figure | before (each run) | after (each run) | median before → after |"]
    lines.append("|---:|---|---|---|---|")
    for index, level in enumerate(before[0]["levels"]):
        for name, read in FIGURES:
            olds = [read(run["levels"][index]) for run in before]
            news = [read(run["levels"][index]) for run in after]
            if None in olds or None in news:
                continue
            lines.append(
                f"| {level['sessions']} | {name} | {' / '.join(map(str, olds))} | "
                f"{' / '.join(map(str, news))} | "
                f"{statistics.median(olds):g} → **{statistics.median(news):g}** |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="a commit, branch or tag")
    parser.add_argument("--after", help="a commit to compare instead of the working tree")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "ab")
    parser.add_argument("options", nargs="*", help="run.py options, after --")
    args = parser.parse_args()
    before: list[dict[str, Any]] = []
    after: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as work:
        old = export(args.before, Path(work) / "before")
        new = export(args.after, Path(work) / "after") if args.after else REPO
        for index in range(args.rounds):
            for name, tree, runs in (("before", old, before), ("after", new, after)):
                print(f"round {index + 1}: {name}", flush=True)
                runs.append(run_once(tree, args.out / f"{name}-{index + 1}", args.options))
    after_name = args.after or "working tree"
    print(f"\nbefore = {args.before}, after = {after_name}; run.py {' '.join(args.options)}\n")
    print(table(before, after))


if __name__ == "__main__":
    main()
