"""Every setting of the service, read from the environment or `backend/.env`.

This is the only module that reads the environment. Names are case-insensitive:
`LLM_MODEL` and `llm_model` are the same setting.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.errors import StartupError

BACKEND_DIR = Path(__file__).resolve().parents[2]
DEFAULT_RESUME = BACKEND_DIR / "data" / "resume.md"
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{BACKEND_DIR / 'resume_chat.db'}"
OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"

Seconds = Annotated[float, Field(gt=0, le=3600)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=BACKEND_DIR / ".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
    )

    # Model provider: OpenRouter or any OpenAI-compatible API.
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = OPENROUTER_BASE_URL
    llm_model: str = Field("openai/gpt-4o-mini", min_length=1)
    llm_temperature: float = Field(0.3, ge=0, le=2)
    llm_max_tokens: int = Field(700, ge=1, le=200_000)
    llm_connect_timeout: Seconds = 5.0
    llm_first_token_timeout: Seconds = 30.0
    llm_chunk_timeout: Seconds = 30.0
    llm_total_timeout: Seconds = 180.0
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_retry_max_wait: Seconds = 10.0
    llm_max_connections: int = Field(200, ge=1, le=10_000)
    app_url: str = "https://github.com/resume-chatbot"
    app_title: str = "Resume Chatbot"

    # Storage.
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(10, ge=1, le=500)
    migrate_on_startup: bool = True

    # Resume and conversation.
    resume_path: Path = DEFAULT_RESUME
    resume_max_bytes: int = Field(5_000_000, ge=1)
    max_message_chars: int = Field(4000, ge=1, le=100_000)
    history_messages: int = Field(200, ge=0, le=10_000)
    shutdown_grace_seconds: Seconds = 20.0

    # Operations.
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("openrouter_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must start with postgresql+asyncpg:// or sqlite+aiosqlite://")
        return value

    @field_validator("openrouter_api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value and value.get_secret_value().strip() else None

    @property
    def llm_configured(self) -> bool:
        """A key is needed for OpenRouter; local OpenAI-compatible servers may need none."""
        return self.openrouter_api_key is not None or not self.openrouter_base_url.startswith(
            OPENROUTER_BASE_URL
        )


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation failure into one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            shown = "" if "key" in name.lower() else f" (got {error.get('input')!r})"
            problems.append(f"{name}: {error['msg']}{shown}")
        raise StartupError("Invalid setting " + "; ".join(problems)) from exc
