"""What the leak guard costs per answer, and how long it holds text back.

    cd backend && uv run python ../bench/leak_guard.py [--repeat 200]

Feeds answers through `LeakGuard` in model-sized chunks (a few characters each, as
providers stream them) against the real prompt of the sample resume, with the tools'
guidance as by default, and prints the CPU time per answer and per thousand characters,
and how many characters were waiting after each chunk (mean and most).
"""

import argparse
import re
import statistics
import time
from pathlib import Path

from app.chat.leak_guard import LeakGuard, LeakPatterns, process_canary
from app.chat.prompts import instructions, system_prompt
from app.core.config import DEFAULT_RESUME
from app.resume.loader import load_resume

ANSWER = (
    "Maya is a staff software engineer at Nordpay in Stockholm, where she leads a team of six "
    "engineers who own the payments ledger and the card-authorisation services. Before that "
    "she rebuilt the route-planning API at Trailhead Logistics in Go. The resume does not say "
    "what salary she expects, so it is best to contact Maya directly. "
)


def chunks(text: str) -> list[str]:
    """Roughly what a provider streams: a word or part of one at a time."""
    return re.findall(r"\s*\S{1,6}", text)


def measure(patterns: LeakPatterns, text: str, repeat: int) -> tuple[float, list[int]]:
    pieces = chunks(text)
    held: list[int] = []
    started = time.process_time()
    for run in range(repeat):
        guard = LeakGuard(patterns)
        fed = passed = 0
        for piece in pieces:
            fed += len(piece)
            passed += len(guard.feed(piece))
            if not run:
                held.append(fed - passed)
        guard.flush()
    return (time.process_time() - started) / repeat, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    resume = load_resume(Path(DEFAULT_RESUME), 5_000_000)
    prompt = system_prompt(
        resume.owner_name, resume.text, process_canary(), tools=True
    )  # LLM_TOOLS=auto
    patterns = LeakPatterns(process_canary(), instructions(prompt))
    for label, text in (("short answer", ANSWER), ("700-token answer", ANSWER * 7)):
        seconds, held = measure(patterns, text, args.repeat)
        per_chunk = seconds / len(chunks(text))
        print(
            f"{label:>17}: {len(text):5} characters in {len(chunks(text)):4} chunks, "
            f"{seconds * 1e3:6.2f} ms CPU ({per_chunk * 1e6:4.1f} us per chunk); "
            f"held back {statistics.mean(held):4.1f} characters on average, {max(held)} at most"
        )


if __name__ == "__main__":
    main()
