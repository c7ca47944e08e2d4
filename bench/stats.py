"""Latency percentiles and the figures every bench row reports."""
import statistics


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(latencies, elapsed, cpu_seconds, errors=0):
    """calls/s, p50/p95/p99 in ms, CPU ms per call, errors — from per-call latencies (seconds)."""
    ordered = sorted(latencies)
    calls = len(ordered)
    ms = lambda value: None if value is None else round(value * 1000, 2)  # noqa: E731
    return {
        "calls": calls,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "per_second": round(calls / elapsed, 1) if elapsed else 0.0,
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p95_ms": ms(percentile(ordered, 0.95)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "mean_ms": ms(statistics.fmean(ordered)) if ordered else None,
        "cpu_ms_per_call": round(cpu_seconds * 1000 / calls, 3) if calls else None,
    }
