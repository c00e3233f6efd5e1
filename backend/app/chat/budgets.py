"""Budgets and the per-turn checks that every way in shares."""

from dataclasses import dataclass

from app.core.config import Settings
from app.core.errors import BudgetExceededError, SessionLimitError

SERVICE_KEY = ("service", "all")


def client_counter(client_key: str) -> tuple[str, str]:
    return ("client", client_key)


@dataclass(frozen=True, slots=True)
class Budgets:
    """Token budgets; 0 means none."""

    per_session: int
    per_client_per_day: int
    per_day: int
    turns_per_session: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "Budgets":
        return cls(
            per_session=settings.budget_tokens_per_session,
            per_client_per_day=settings.budget_tokens_per_ip_per_day,
            per_day=settings.budget_tokens_per_day,
            turns_per_session=settings.max_turns_per_session,
        )

    def check(self, *, questions: int, session: int, client_today: int, today: int) -> None:
        """Refuse a question before anything goes upstream once a budget is spent."""
        if questions >= self.turns_per_session:
            raise SessionLimitError(
                f"This conversation has reached its limit of {self.turns_per_session} "
                "questions. Start a new one to keep asking."
            )
        if 0 < self.per_session <= session:
            raise BudgetExceededError(
                "This conversation has used its share of the assistant. Start a new one."
            )
        if 0 < self.per_client_per_day <= client_today:
            raise BudgetExceededError(
                "You have reached today's limit for the assistant. Please come back tomorrow."
            )
        if 0 < self.per_day <= today:
            raise BudgetExceededError(
                "The assistant has reached its limit for today. Please come back tomorrow."
            )
