"""SLIs of user traffic over an exact window: counter deltas between its ends, not rate extrapolation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from app import metric_names as names
from loadtest.slo_check import NotMeasured
from loadtest.slo_check.prometheus import Prometheus, Sample
from observability import promql
from observability.slo import spec as slo_spec
from observability.slo_rules import route_matchers

QUANTILES = (0.5, 0.95, 0.99)
SLI = TypeVar("SLI", slo_spec.AvailabilitySLI, slo_spec.LatencySLI)


@dataclass
class Window:
    name: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class SLIs:
    requests: float
    errors: float
    fast: float
    throughput_rps: float
    availability: float | None
    latency_sli: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def sli(service: slo_spec.ServiceSLOs, kind: type[SLI]) -> SLI:
    """The service's SLI of ``kind``; the gate needs one availability and one latency SLO."""
    for slo in service.slos:
        if isinstance(slo.sli, kind):
            return slo.sli
    raise NotMeasured(f"{service.path.name}: no {kind.__name__}, which the gate measures")


def _by_label(samples: list[Sample], label: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for sample in samples:
        key = sample.labels.get(label, "") if label else ""
        out[key] = out.get(key, 0.0) + sample.value
    return out


def _delta(prom: Prometheus, expr: str, window: Window, by: str | None = None) -> dict[str, float]:
    """Counter growth of ``expr`` (summed, optionally by one label) between the window's ends."""
    aggregate = f"sum by ({by}) ({expr})" if by else f"sum({expr})"
    end = _by_label(prom.query(aggregate, at=window.end), by)
    start = _by_label(prom.query(aggregate, at=window.start), by)
    return {key: max(0.0, value - start.get(key, 0.0)) for key, value in end.items()}


def quantile_from_buckets(q: float, buckets: Mapping[str, float]) -> float | None:
    """histogram_quantile() on cumulative bucket counts keyed by their `le` text."""
    bounds = sorted(((math.inf if le == "+Inf" else float(le)), count) for le, count in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank = q * bounds[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # as Prometheus does: the highest finite bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def measure(prom: Prometheus, service: slo_spec.ServiceSLOs, window: Window) -> SLIs:
    """Availability, latency SLI, percentiles and throughput of user traffic within ``window``."""
    availability = sli(service, slo_spec.AvailabilitySLI)
    latency = sli(service, slo_spec.LatencySLI)
    base = route_matchers(service)
    total = _delta(prom, promql.selector(availability.metric.total, base, wrap=10_000), window).get("", 0.0)
    bad_matchers = [*base, (names.STATUS, "=~", availability.bad_status)]
    errors = _delta(prom, promql.selector(availability.metric.total, bad_matchers, wrap=10_000), window)
    buckets = _delta(prom, promql.selector(latency.metric.bucket, base, wrap=10_000), window, by="le")
    fast = next((n for le, n in buckets.items() if le != "+Inf" and float(le) == latency.threshold_seconds), 0.0)
    count = buckets.get("+Inf", 0.0)
    p50, p95, p99 = (quantile_from_buckets(q, buckets) for q in QUANTILES)
    bad = errors.get("", 0.0)
    return SLIs(
        requests=round(total),
        errors=round(bad),
        fast=round(fast),
        throughput_rps=round(total / window.seconds, 2) if window.seconds > 0 else 0.0,
        availability=(1 - bad / total) if total else None,
        latency_sli=(fast / count) if count else None,
        p50_ms=_ms(p50),
        p95_ms=_ms(p95),
        p99_ms=_ms(p99),
    )
