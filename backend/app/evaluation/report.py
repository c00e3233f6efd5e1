"""The evaluation's results: a terminal scorecard, a JSON and a Markdown report, a verdict.

Every report has, per category, `total` and `passed`, and per question its verdict with
the reasons for it. The run passes when the share of answers passed reaches the overall
threshold and every category reaches the per-category one.
"""

import json
import textwrap
from dataclasses import dataclass
from typing import Any

from app.evaluation.grading import Answered, Verdict
from app.evaluation.questions import Category, Question

WORST_SHOWN = 5
QUOTE_CHARS = 160


@dataclass(frozen=True, slots=True)
class Graded:
    question: Question
    answer: Answered
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Thresholds:
    overall: float  # share of all answers that must pass
    category: float  # share each category must pass


@dataclass(frozen=True, slots=True)
class Score:
    total: int
    passed: int

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 1.0


@dataclass(frozen=True, slots=True)
class Report:
    owner: str
    resume: str
    model: str
    judge_model: str | None
    graded: list[Graded]
    thresholds: Thresholds

    @property
    def score(self) -> Score:
        return Score(len(self.graded), sum(g.verdict.passed for g in self.graded))

    def categories(self) -> dict[str, Score]:
        scores = {}
        for category in Category:
            mine = [g for g in self.graded if g.question.category is category]
            if mine:
                scores[category.value] = Score(len(mine), sum(g.verdict.passed for g in mine))
        return scores

    @property
    def ok(self) -> bool:
        below = [s for s in self.categories().values() if s.rate < self.thresholds.category]
        return self.score.rate >= self.thresholds.overall and not below

    def to_json(self) -> dict[str, Any]:
        score = self.score
        return {
            "resume": {"owner": self.owner, "path": self.resume},
            "model": self.model,
            "judge_model": self.judge_model,
            "result": "pass" if self.ok else "fail",
            "total": score.total,
            "passed": score.passed,
            "pass_rate": round(score.rate, 4),
            "thresholds": {
                "overall": self.thresholds.overall,
                "category": self.thresholds.category,
            },
            "categories": {
                name: {"total": s.total, "passed": s.passed, "pass_rate": round(s.rate, 4)}
                for name, s in self.categories().items()
            },
            "questions": [_question(g) for g in self.graded],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def scorecard(self) -> str:
        """The terminal summary: a line per category, the verdict, the worst answers quoted."""
        lines = [
            f"resume-chat eval: {self.owner or 'the resume'} ({self.resume}), model {self.model}"
            + (f", judge {self.judge_model}" if self.judge_model else ""),
            "",
            f"  {'category':<15}{'passed':>7}{'total':>7}",
        ]
        for name, score in self.categories().items():
            lines.append(f"  {name:<15}{score.passed:>7}{score.total:>7}   {score.rate:.0%}")
        score = self.score
        lines += [
            f"  {'overall':<15}{score.passed:>7}{score.total:>7}   {score.rate:.0%}",
            "",
            f"{'PASS' if self.ok else 'FAIL'}: thresholds {self.thresholds.overall:.0%} overall, "
            f"{self.thresholds.category:.0%} in every category.",
        ]
        failed = [g for g in self.graded if not g.verdict.passed]
        if failed:
            lines += ["", f"Worst answers ({len(failed)} failed):"]
            for graded in _worst(failed)[:WORST_SHOWN]:
                lines += _quoted(graded)
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        score = self.score
        lines = [
            f"# Evaluation: {self.owner or 'the resume'}",
            "",
            f"Resume `{self.resume}`, model `{self.model}`"
            + (f", judge `{self.judge_model}`" if self.judge_model else "")
            + f". Result: **{'pass' if self.ok else 'fail'}** ({score.passed} of {score.total}, "
            f"{score.rate:.0%}; thresholds {self.thresholds.overall:.0%} overall, "
            f"{self.thresholds.category:.0%} per category).",
            "",
            "| Category | Passed | Total | Rate |",
            "| --- | ---: | ---: | ---: |",
            *(
                f"| {name} | {s.passed} | {s.total} | {s.rate:.0%} |"
                for name, s in self.categories().items()
            ),
            "",
            "## Answers",
        ]
        for graded in self.graded:
            lines += _markdown_answer(graded)
        return "\n".join(lines) + "\n"


def _question(graded: Graded) -> dict[str, Any]:
    question, answer, verdict = graded.question, graded.answer, graded.verdict
    return {
        "id": question.id,
        "category": question.category.value,
        "turns": list(question.turns),
        "answer": answer.text,
        "finish_reason": answer.finish_reason,
        "error": answer.error,
        "verdict": "pass" if verdict.passed else "fail",
        "reasons": verdict.reasons,
        "judge": verdict.judged,
    }


def _worst(failed: list[Graded]) -> list[Graded]:
    """Hard failures (leaks, forbidden words, errors) before soft ones."""
    return sorted(failed, key=lambda g: g.verdict.soft)


def _quoted(graded: Graded) -> list[str]:
    reasons = "; ".join(graded.verdict.reasons)
    answer = graded.answer.text.replace("\n", " ").strip() or "(no answer)"
    quote = textwrap.shorten(answer, QUOTE_CHARS, placeholder=" ...")
    return [
        f"  [{graded.question.category.value}] {graded.question.text}",
        f"    -> {reasons}"
        + (f" (judge: {graded.verdict.judged})" if graded.verdict.judged else ""),
        f'    "{quote}"',
    ]


def _markdown_answer(graded: Graded) -> list[str]:
    verdict = graded.verdict
    mark = "pass" if verdict.passed else "**fail**"
    quoted = "\n".join(f"> {line}" for line in (graded.answer.text or "(no answer)").split("\n"))
    lines = [
        "",
        f"### {graded.question.id} ({graded.question.category.value}): {mark}",
        "",
        *(f"- Asked: {turn}" for turn in graded.question.turns),
        "",
        quoted,
        "",
    ]
    if verdict.reasons:
        lines.append(f"Reasons: {'; '.join(verdict.reasons)}")
    if verdict.judged:
        lines.append(f"Judge: {verdict.judged}")
    return lines
