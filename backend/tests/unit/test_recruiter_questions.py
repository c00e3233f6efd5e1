"""The answers given without a model, on the labelled recruiter questions."""

from collections import Counter
from pathlib import Path

import yaml
from excerpt_answers import QUESTIONS, score

from app.resume.loader import FORMATS

BACKEND = Path(__file__).resolve().parents[2]


def test_the_labelled_set_has_forty_questions_over_three_formats() -> None:
    labelled = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))
    formats = {name: FORMATS[Path(path).suffix] for name, path in labelled["resumes"].items()}
    asked = Counter(item["resume"] for item in labelled["questions"])

    assert len(labelled["questions"]) >= 40
    assert len(set(formats.values())) >= 3
    assert all(asked[name] >= 10 for name in formats), asked
    assert all(item["facts"] for item in labelled["questions"])
    assert all((BACKEND / path).is_file() for path in labelled["resumes"].values())


def test_nine_in_ten_answers_contain_their_fact_and_the_median_is_short() -> None:
    result = score()

    missed = [(a.resume, a.question, a.answer) for a in result.answers if not a.hit]
    assert result.hit_rate >= 0.9, missed
    assert result.median_chars <= 400
