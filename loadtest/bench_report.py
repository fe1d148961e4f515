"""`make bench`'s verdicts and report: medians, the ratios against their targets, Markdown.

Targets are reported, never asserted (docs/performance.md): only ratios within one run on one
machine mean anything. A measurement that came back empty is not a figure: :func:`require_measured`
refuses it, and `make bench` exits 2 naming it.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (b) instrumented, (c) instrumentation off, (a) bare WSGI, (p) the usual instrumentation.
TARGETS: dict[str, float] = {
    "b/c": 0.80,  # the telemetry tax at most 20 %
    "b/p": 1.50,  # at least 1.5x what the usual instrumentation serves
    "c/a": 0.65,  # the service's own framework cost
    "open_p99_b/c": 2.0,  # open-loop p99 of (b) at most twice (c)'s, at half of (c)'s maximum
}


class NotMeasured(Exception):
    """A measurement came back empty (no requests, no samples, only errors): nothing to report."""


@dataclass(frozen=True)
class Measurement:
    variant: str
    round: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def require_measured(measurements: list[Measurement], keys: list[str]) -> None:
    """Every variant answered, without errors, in every round."""
    for key in keys:
        rows = [m for m in measurements if m.variant == key]
        if not rows:
            raise NotMeasured(f"variant ({key}) was not measured")
        for m in rows:
            if m.requests_per_second <= 0:
                raise NotMeasured(f"variant ({key}) answered nothing in round {m.round}")
            if m.errors:
                raise NotMeasured(f"variant ({key}) answered {m.errors} errors in round {m.round}: see its log")


def require_capacity(requests: int, cpu_seconds: float, log: Path) -> None:
    """The Locust mix answered requests and they cost CPU (a Locust that died at once measures 0 and 0)."""
    if requests <= 0 or cpu_seconds <= 0:
        raise NotMeasured(f"the Locust mix answered {requests} requests for {cpu_seconds} CPU seconds: see {log}")


def medians(measurements: list[Measurement], keys: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for key in keys:
        rows = [m for m in measurements if m.variant == key]
        out[key] = {
            "requests_per_second": statistics.median(m.requests_per_second for m in rows),
            "p50_ms": statistics.median(m.p50_ms for m in rows),
            "p99_ms": statistics.median(m.p99_ms for m in rows),
        }
    return out


def ratios(closed: dict[str, dict[str, float]], open_loop: dict[str, dict[str, float]]) -> dict[str, float]:
    rps = {key: m["requests_per_second"] for key, m in closed.items()}
    return {
        "b/c": round(rps["b"] / rps["c"], 3),
        "b/p": round(rps["b"] / rps["p"], 3),
        "c/a": round(rps["c"] / rps["a"], 3),
        "b/a": round(rps["b"] / rps["a"], 3),
        "d/b": round(rps["d"] / rps["b"], 3),
        "open_p99_b/c": round(open_loop["b"]["p99_ms"] / open_loop["c"]["p99_ms"], 3),
    }


def met(measured: dict[str, float]) -> dict[str, bool]:
    """Each target against its measurement: the open-loop one is an upper bound, the rest lower bounds."""
    return {
        name: measured[name] <= bound if name.startswith("open_") else measured[name] >= bound
        for name, bound in TARGETS.items()
    }


def markdown(summary: dict[str, Any]) -> str:
    settings = summary["settings"]
    lines = [
        "# Benchmark: GET /api/v1/tasks/<id>",
        "",
        f"gunicorn {settings['workers']} workers of app/worker.py (gevent), one PostgreSQL, one machine "
        f"({os.cpu_count()} cores). Closed loop: wrk -t{settings['threads']} -c{settings['connections']}, "
        f"{settings['rounds']} interleaved rounds of {settings['seconds']} s, medians.",
        "",
        "| variant | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for key, label in summary["variants"].items():
        m = summary["closed_loop"][key]
        lines.append(f"| ({key}) {label} | {m['requests_per_second']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} |")
    open_loop = summary["open_loop"]
    rate = next(iter(open_loop.values()))["rate"]
    lines += [
        "",
        f"Open loop: {rate} req/s offered (half of (c)'s maximum) for {settings['open_seconds']} s a round, "
        f"{settings['open_rounds']} interleaved rounds, h2load, a new connection per request (loadtest/openloop.py).",
        "",
        "| variant | answered | failed | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, m in open_loop.items():
        lines.append(f"| ({key}) | {m['answered']} | {m['failed']} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} |")
    r, verdict = summary["ratios"], summary["met"]
    names = {
        "b/c": "b/c: instrumented vs instrumentation off (the telemetry tax)",
        "b/p": "b/p: ours vs the usual instrumentation",
        "c/a": "c/a: the service vs a bare WSGI function",
        "open_p99_b/c": "open-loop p99 of (b) over (c)'s",
    }
    lines += ["", "| ratio | measured | target | met |", "|---|---:|---:|:---:|"]
    for name, label in names.items():
        sign = "≤" if name.startswith("open_") else "≥"
        lines.append(f"| {label} | {r[name]:.2f} | {sign} {TARGETS[name]:.2f} | {'yes' if verdict[name] else 'no'} |")
    lines += [
        "",
        f"For reading them: b/a {r['b/a']:.2f}; d/b (10 % of traces sampled at the source vs all) {r['d/b']:.2f}.",
        "",
        "## Where a request's CPU goes (loadtest/cost.py: in-process under gevent, CPU time, best of 5 × 500)",
        "",
        "| configuration | CPU µs per request | this layer |",
        "|---|---:|---:|",
    ]
    previous = None
    for name, micros in summary["cost_us_per_request"].items():
        layer = "" if previous is None or name.startswith("fully") else f"+{micros - previous:.0f}"
        lines.append(f"| {name} | {micros:.0f} | {layer} |")
        if not name.startswith("fully"):
            previous = micros
    shares = summary["profile_shares"]
    keys = list(shares)
    lines += [
        "",
        f"## Where a loaded worker's time goes (loadtest/profile.py: py-spy, wrk -c{settings['connections']})",
        "",
        "| owner of the innermost frame | " + " | ".join(f"({key})" for key in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for owner in next(iter(shares.values())):
        lines.append(f"| {owner} | " + " | ".join(f"{shares[key][owner]:.1f} %" for key in keys) + " |")
    mix = summary["capacity"]
    per_worker = ", ".join(f"{rate} req/s at {u}" for u, rate in mix["requests_per_second_per_worker"].items())
    lines += [
        "",
        "## Capacity of the user mix (loadtest/capacity.py)",
        "",
        f"The Locust mix against (b) for {mix['seconds']} s: {mix['requests']} requests cost the "
        f"{mix['workers']} workers {mix['cpu_seconds']} CPU seconds, {mix['cpu_ms_per_request']} ms each. "
        f"One worker (one core) sustains {per_worker} CPU. docs/capacity.md turns this into the HPA "
        "target, replica bounds and the connection budget.",
    ]
    return "\n".join(lines) + "\n"
