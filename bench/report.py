"""latest.json, latest.md and (with matplotlib) latest.png from one run's results."""

import json
from pathlib import Path
from typing import Any

Results = dict[str, Any]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{code} {count}" for code, count in errors.items()) or "0"


def _latency_row(level: dict[str, Any]) -> str:
    app, floor, over = level["app"], level["floor"], level["overhead_ms"]
    cells = [
        str(level["sessions"]),
        f"{app['answered']}/{app['asked']}",
        f"{app['answers_per_s']:.1f} / {floor['answers_per_s']:.1f}",
        "-" if level["throughput_ratio"] is None else f"{level['throughput_ratio']:.2f}",
        f"{_ms(app['first_ms']['p50'])} / {_ms(floor['first_ms']['p50'])}",
        f"{_signed(over['first']['p50'])} / {_signed(over['first']['p95'])}"
        f" / {_signed(over['first']['p99'])}",
        f"{_ms(app['done_ms']['p50'])} / {_ms(floor['done_ms']['p50'])}",
        f"{_signed(over['done']['p50'])} / {_signed(over['done']['p99'])}",
        f"{_ms(app['connect_ms']['p50'])} / {_ms(app['connect_ms']['p95'])}",
        _errors(app["errors"]),
    ]
    return "| " + " | ".join(cells) + " |"


def _resource_row(level: dict[str, Any]) -> str:
    server, idle = level["server"], level["idle"]
    db = server["db_cpu_ms_per_answer"]
    cells = [
        str(level["sessions"]),
        f"{server['cpu_ms_per_answer']:.2f}",
        "-" if db is None else f"{db:.2f}",
        f"{server['cpu_s']:.1f} / {server['provider_cpu_s']:.1f} / {server['loadgen_cpu_s']:.1f}",
        f"{server['rss_peak_mb']:.0f}",
        f"{idle['rss_baseline_mb']:.0f}",
        f"{idle['rss_per_session_kb']:.1f}",
        _errors(idle["errors"]),
    ]
    return "| " + " | ".join(cells) + " |"


LATENCY_HEAD = (
    "| sessions | answered | answers/s app / floor | ratio | first chunk p50 ms app / floor "
    "| first chunk overhead ms p50 / p95 / p99 | done p50 ms app / floor "
    "| done overhead ms p50 / p99 | connect→session ms p50 / p95 | errors |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)
RESOURCE_HEAD = (
    "| sessions | server CPU ms/answer | PostgreSQL CPU ms/answer "
    "| CPU s app / provider / load generator | server RSS peak MB | idle baseline MB "
    "| RSS KB per idle session | idle errors |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---|"
)


def _header(results: Results) -> str:
    machine, config = results["machine"], results["config"]
    provider = config["provider"]
    dirty = " (with uncommitted changes)" if machine.get("uncommitted_changes") else ""
    return (
        f"Run {results['started_at']}, {results['duration_s']} s, "
        f"commit {machine.get('commit')}{dirty}.\n"
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gb']} GB, Linux {machine['kernel']}, Python {machine['python']}.\n"
        f"Load: {config['questions']} question(s) per session back to back; "
        f"{config['workers']} uvicorn worker(s); {config['database']}"
        f"{' and Redis' if config.get('redis') else ''}; provider "
        f"{provider['first_token_ms']:g} ms to first token, {provider['tokens']} tokens at "
        f"{provider['tokens_per_second']:g} tokens/s."
    )


def markdown(results: Results) -> str:
    levels = results["levels"]
    return "\n".join(
        [
            _header(results),
            "",
            LATENCY_HEAD,
            *(_latency_row(level) for level in levels),
            "",
            RESOURCE_HEAD,
            *(_resource_row(level) for level in levels),
            *_comparison(results.get("workers_comparison")),
        ]
    )


def compare_workers(first: Results, second: Results) -> Results:
    """`first` with the run of `second` (more workers) beside it and the throughput ratio."""
    workers = [first["config"]["workers"], second["config"]["workers"]]
    rows = []
    for one, other in zip(first["levels"], second["levels"], strict=True):
        rates = [one["app"]["answers_per_s"], other["app"]["answers_per_s"]]
        rows.append(
            {
                "sessions": one["sessions"],
                "answers_per_s": rates,
                "cpu_ms_per_answer": [
                    one["server"]["cpu_ms_per_answer"],
                    other["server"]["cpu_ms_per_answer"],
                ],
                "errors": [one["app"]["errors"], other["app"]["errors"]],
                "ratio": round(rates[1] / rates[0], 3) if rates[0] else None,
            }
        )
    comparison = {"workers": workers, "levels": rows, "second_run": second}
    return first | {"workers_comparison": comparison}


def _comparison(comparison: dict[str, Any] | None) -> list[str]:
    if comparison is None:
        return []
    one, two = comparison["workers"]
    lines = [
        "",
        f"Workers: {one} against {two} (same levels and provider, run one after the other).",
        "",
        f"| sessions | answers/s {one} / {two} worker(s) | ratio | server CPU ms/answer "
        f"{one} / {two} | errors {one} / {two} |",
        "|---:|---:|---:|---:|---|",
    ]
    for row in comparison["levels"]:
        rates, cpu, errors = row["answers_per_s"], row["cpu_ms_per_answer"], row["errors"]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['sessions']} | {rates[0]:.1f} / {rates[1]:.1f} | {ratio} "
            f"| {cpu[0]:.2f} / {cpu[1]:.2f} | {_errors(errors[0])} / {_errors(errors[1])} |"
        )
    return lines


def chart(results: Results, path: Path) -> bool:
    """Overhead and throughput against concurrency; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    levels = results["levels"]
    x = [level["sessions"] for level in levels]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, percentile, label in (
        ("first", "p50", "first chunk p50"),
        ("first", "p99", "first chunk p99"),
        ("done", "p50", "done p50"),
    ):
        y = [level["overhead_ms"][key][percentile] for level in levels]
        left.plot(x, y, marker="o", label=label)
    left.set(xscale="log", xlabel="concurrent sessions", ylabel="ms over the floor (symlog)")
    left.set_yscale("symlog", linthresh=10)
    left.set_title("Overhead: app minus provider alone")
    for side, label in (("app", "through the app"), ("floor", "provider alone (floor)")):
        right.plot(x, [level[side]["answers_per_s"] for level in levels], marker="o", label=label)
    right.set(xscale="log", yscale="log", xlabel="concurrent sessions", ylabel="answers/s")
    right.set_title("Throughput")
    for axes in (left, right):
        axes.set_xticks(x, [str(n) for n in x])
        axes.grid(visible=True, which="both", alpha=0.3)
        axes.legend()
    figure.suptitle(f"{results['machine']['nproc']} CPUs, {results['config']['database']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def write_outputs(results: Results, out: Path) -> list[Path]:
    written = [out / "latest.json", out / "latest.md"]
    written[0].write_text(json.dumps(results, indent=2) + "\n")
    written[1].write_text(markdown(results) + "\n")
    if chart(results, out / "latest.png"):
        written.append(out / "latest.png")
    return written
