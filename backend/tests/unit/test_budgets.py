"""Budgets.check: which question is refused, with which error and sentence."""

import pytest

from app.chat.budgets import Budgets
from app.core.config import Settings
from app.core.errors import AppError, BudgetExceededError, SessionLimitError

BUDGETS = Budgets(per_session=1000, per_client_per_day=5000, per_day=20_000, turns_per_session=5)
UNDER = {"questions": 4, "session": 999, "client_today": 4999, "today": 19_999}


def refusal(budgets: Budgets, **spent: int) -> AppError:
    with pytest.raises(AppError) as caught:
        budgets.check(**(UNDER | spent))
    return caught.value


def test_a_question_under_every_budget_is_allowed() -> None:
    BUDGETS.check(**UNDER)
    BUDGETS.check(questions=0, session=0, client_today=0, today=0)


def test_the_turn_limit_counts_questions_already_asked() -> None:
    error = refusal(BUDGETS, questions=5)
    assert isinstance(error, SessionLimitError)
    assert (error.code, error.status_code) == ("session_limit_reached", 429)
    assert "limit of 5 questions" in error.message
    assert "Start a new one" in error.message


@pytest.mark.parametrize(
    ("spent", "sentence"),
    [
        ({"session": 1000}, "This conversation has used its share"),
        ({"client_today": 5000}, "You have reached today's limit"),
        ({"today": 20_000}, "The assistant has reached its limit for today"),
    ],
)
def test_a_spent_budget_refuses_with_its_own_sentence(spent: dict[str, int], sentence: str) -> None:
    error = refusal(BUDGETS, **spent)
    assert isinstance(error, BudgetExceededError)
    assert (error.code, error.status_code) == ("budget_exceeded", 429)
    assert error.message.startswith(sentence)


def test_the_narrowest_limit_is_the_one_reported() -> None:
    """A visitor who hits several limits is told about the one they can act on first."""
    everything = {"questions": 5, "session": 1000, "client_today": 5000, "today": 20_000}
    assert isinstance(refusal(BUDGETS, **everything), SessionLimitError)
    del everything["questions"]
    assert "This conversation" in refusal(BUDGETS, **everything).message
    del everything["session"]
    assert "You have reached" in refusal(BUDGETS, **everything).message


def test_zero_means_no_budget() -> None:
    unlimited = Budgets(per_session=0, per_client_per_day=0, per_day=0, turns_per_session=5)
    unlimited.check(questions=4, session=10**12, client_today=10**12, today=10**12)
    assert isinstance(refusal(unlimited, questions=5), SessionLimitError)


def test_budgets_come_from_the_documented_settings() -> None:
    settings = Settings(
        _env_file=None,
        budget_tokens_per_session=11,
        budget_tokens_per_ip_per_day=22,
        budget_tokens_per_day=33,
        max_turns_per_session=4,
    )
    assert Budgets.from_settings(settings) == Budgets(
        per_session=11, per_client_per_day=22, per_day=33, turns_per_session=4
    )
