"""Percentile summaries of latency samples, in milliseconds."""

import math

Summary = dict[str, float | int | None]
PERCENTILES = (50, 95, 99)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); `values` sorted."""
    if len(values) == 1:
        return values[0]
    rank = (len(values) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return values[low] + (values[high] - values[low]) * (rank - low)


def summarize(seconds: list[float]) -> Summary:
    """Count, p50/p95/p99, mean and max of `seconds`, reported in milliseconds."""
    if not seconds:
        return {"n": 0, **{f"p{q}": None for q in PERCENTILES}, "mean": None, "max": None}
    ms = sorted(value * 1000 for value in seconds)
    summary: Summary = {"n": len(ms)}
    for q in PERCENTILES:
        summary[f"p{q}"] = round(percentile(ms, q), 2)
    summary["mean"] = round(sum(ms) / len(ms), 2)
    summary["max"] = round(ms[-1], 2)
    return summary


def difference(app: Summary, floor: Summary) -> dict[str, float | None]:
    """App minus floor at each percentile: what the service adds."""
    result: dict[str, float | None] = {}
    for q in PERCENTILES:
        a, f = app.get(f"p{q}"), floor.get(f"p{q}")
        result[f"p{q}"] = None if a is None or f is None else round(a - f, 2)
    return result
