"""How well the answers given without a model answer recruiters: hit rate and length.

    cd backend && uv run python ../bench/excerpt_answers.py [--show-misses] [--show-all]

Asks every question of backend/tests/unit/data/recruiter_questions.yaml of its resume's
excerpt index and prints the share of answers that contain every expected fact and the
median answer length in characters. tests/unit/test_recruiter_questions.py holds the
figures to their targets (90% and 400 characters).
"""

import argparse
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.resume.excerpt_index import ExcerptIndex
from app.resume.loader import load_resume

BACKEND = Path(__file__).resolve().parents[1] / "backend"
QUESTIONS = BACKEND / "tests" / "unit" / "data" / "recruiter_questions.yaml"
_NOISE = re.compile(r"[*`_]")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Scored:
    resume: str
    question: str
    facts: list[str]
    answer: str

    @property
    def hit(self) -> bool:
        shown = comparable(self.answer)
        return all(comparable(fact) in shown for fact in self.facts)


@dataclass(frozen=True)
class Score:
    answers: list[Scored]

    @property
    def hit_rate(self) -> float:
        return sum(answer.hit for answer in self.answers) / len(self.answers)

    @property
    def median_chars(self) -> float:
        return statistics.median(len(answer.answer) for answer in self.answers)


def comparable(text: str) -> str:
    """Lower case, no Markdown emphasis, straight apostrophes, single spaces."""
    text = _NOISE.sub("", text.casefold().replace("\u2019", "'"))
    return _SPACE.sub(" ", text).strip()


def score(path: Path = QUESTIONS) -> Score:
    labelled = yaml.safe_load(path.read_text(encoding="utf-8"))
    indexes = {
        name: ExcerptIndex.build(load_resume(BACKEND / relative, 5_000_000))
        for name, relative in labelled["resumes"].items()
    }
    answers = []
    for item in labelled["questions"]:
        reply = indexes[item["resume"]].answer(item["question"])
        text = reply if isinstance(reply, str) else reply.text
        answers.append(Scored(item["resume"], item["question"], item["facts"], text))
    return Score(answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show-misses", action="store_true", help="print each missed answer")
    parser.add_argument("--show-all", action="store_true", help="print every answer")
    args = parser.parse_args()
    result = score()
    for answer in result.answers:
        if args.show_all or (args.show_misses and not answer.hit):
            mark = "hit " if answer.hit else "MISS"
            print(f"--- {mark} [{answer.resume}] {answer.question}  (wants {answer.facts})")
            print(answer.answer, end="\n\n")
    hits = sum(answer.hit for answer in result.answers)
    print(
        f"{len(result.answers)} questions over {len({a.resume for a in result.answers})} "
        f"resumes: {hits} contain their fact ({result.hit_rate:.0%}); "
        f"median answer {result.median_chars:.0f} characters"
    )


if __name__ == "__main__":
    main()
