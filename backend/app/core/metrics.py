"""Prometheus metrics of the chat service, correct with one worker process or several.

One process (the default): each `Metrics` keeps its own registry, so every app counts
from zero and many apps can live in one process (as in the tests).

Several workers (`uvicorn --workers N`, gunicorn): export `PROMETHEUS_MULTIPROC_DIR`, an
empty writable directory, in the server's environment before it starts, and pass the
same path as `multiprocess_dir`. prometheus_client picks its storage once, when it is
first imported, from that variable (a value only in `.env` comes too late; `Metrics`
refuses to start then). Each worker writes its values to files there and `render()`
merges the files of every worker, so any worker answers `/metrics` for all of them.
Empty the directory before each start. Open connections are summed over live workers
only: under gunicorn, call `prometheus_client.multiprocess.mark_process_dead(worker.pid)`
in the `child_exit` hook; a worker that crashes under `uvicorn --workers` stays counted
until the next start. Use one `Metrics` per process in this mode.
"""

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from app.core.errors import StartupError

# Model latencies: first tokens in well under a second to whole answers of minutes.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120)


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        _check_mode(multiprocess_dir)
        self._multiprocess_dir = multiprocess_dir
        self._registry = CollectorRegistry()
        # In multiprocess mode values live in files; `render()` reads them, not a registry.
        registry = None if multiprocess_dir else self._registry
        self._open_connections = Gauge(
            "resume_chat_open_connections",
            "WebSocket connections open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._questions = Counter(
            "resume_chat_questions",
            "Questions answered, by how the answer ended (stop, length, cancelled, an error code).",
            ["outcome"],
            registry=registry,
        )
        self._first_token = Histogram(
            "resume_chat_first_token_seconds",
            "Time from question to the first streamed token.",
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._answer = Histogram(
            "resume_chat_answer_seconds",
            "Time from question to the end of the answer.",
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._tokens = Counter(
            "resume_chat_tokens",
            "Model tokens: direction in (prompt) or out (completion).",
            ["direction"],
            registry=registry,
        )
        self._upstream_errors = Counter(
            "resume_chat_upstream_errors",
            "Failed calls to the model provider, by error code.",
            ["code"],
            registry=registry,
        )
        self._refusals = Counter(
            "resume_chat_refusals",
            "Questions and connections refused by a guard, by error code.",
            ["code"],
            registry=registry,
        )
        self._notifications = Counter(
            "resume_chat_notifications",
            "Notification delivery attempts (webhook, email) by outcome: delivered, failed "
            "(tried again later), gave_up.",
            ["channel", "outcome"],
            registry=registry,
        )
        self._notification_latency = Histogram(
            "resume_chat_notification_delivery_seconds",
            "Time from a notification's creation (a new lead) to its delivery.",
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._leaks_blocked = Counter(
            "resume_chat_leaks_blocked",
            "Answers cut because they began repeating the system prompt (finish leak_blocked).",
            registry=registry,
        )
        for direction in ("in", "out"):
            self._tokens.labels(direction)

    def connection_opened(self) -> None:
        self._open_connections.inc()

    def connection_closed(self) -> None:
        self._open_connections.dec()

    def question_finished(
        self,
        outcome: str,
        first_token_s: float | None,
        answer_s: float,
        prompt_tokens: int,
        completion_tokens: int,
    ) -> None:
        self._questions.labels(outcome).inc()
        if first_token_s is not None:
            self._first_token.observe(first_token_s)
        self._answer.observe(answer_s)
        self._tokens.labels("in").inc(prompt_tokens)
        self._tokens.labels("out").inc(completion_tokens)

    def upstream_error(self, code: str) -> None:
        self._upstream_errors.labels(code).inc()

    def refused(self, code: str) -> None:
        self._refusals.labels(code).inc()

    def notification(self, channel: str, outcome: str, latency_s: float | None = None) -> None:
        self._notifications.labels(channel, outcome).inc()
        if latency_s is not None:
            self._notification_latency.observe(latency_s)

    def leak_blocked(self) -> None:
        self._leaks_blocked.inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        registry = self._registry
        if self._multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


def _check_mode(multiprocess_dir: str | None) -> None:
    """Refuse a directory prometheus_client will not use, or files it writes unasked."""
    multiprocess = values.ValueClass is not values.MutexValue
    if multiprocess_dir and not multiprocess:
        raise StartupError(
            "PROMETHEUS_MULTIPROC_DIR must be exported in the server's environment before "
            "it starts (prometheus_client reads it once, at import); .env is too late."
        )
    if multiprocess and not multiprocess_dir:
        raise StartupError(
            "prometheus_client runs in multiprocess mode but Metrics got no multiprocess_dir."
        )
    if multiprocess_dir and not Path(multiprocess_dir).is_dir():
        raise StartupError(f"PROMETHEUS_MULTIPROC_DIR {multiprocess_dir} is not a directory.")
