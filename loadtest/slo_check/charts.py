"""throughput.png, errors.png and latency.png: the run as Prometheus saw it, the drill phases shaded."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app import metric_names as names
from loadtest.slo_check.measure import QUANTILES
from loadtest.slo_check.prometheus import Prometheus
from observability import promql
from observability.slo import spec as slo_spec
from observability.slo_rules import route_matchers

STEP_SECONDS = 2.0
RATE_WINDOW = "10s"


def plots(service: slo_spec.ServiceSLOs) -> dict[str, tuple[str, dict[str, str], float]]:
    """Per file: the y-axis label, the PromQL of each line by its legend, and the scale of its values."""
    matchers = route_matchers(service)
    base = promql.selector(names.HTTP_REQUESTS.total, matchers, wrap=10_000)
    bad = promql.selector(
        names.HTTP_REQUESTS.total, [*matchers, (names.STATUS, "=~", names.SERVER_ERROR_MATCHER)], wrap=10_000
    )
    buckets = promql.selector(names.HTTP_REQUEST_DURATION.bucket, matchers, wrap=10_000)
    rate = f"[{RATE_WINDOW}]"
    return {
        "throughput.png": ("requests per second", {"req/s": f"sum(rate({base}{rate}))"}, 1.0),
        "errors.png": (
            "share of requests answered 5xx",
            {"5xx ratio": f"(sum(rate({bad}{rate})) or vector(0)) / sum(rate({base}{rate}))"},
            1.0,
        ),
        "latency.png": (
            "latency (ms)",
            {f"p{int(q * 100)}": f"histogram_quantile({q}, sum by (le) (rate({buckets}{rate})))" for q in QUANTILES},
            1000.0,
        ),
    }


def draw(prom: Prometheus, service: slo_spec.ServiceSLOs, report: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """Write the charts into ``out``; how many points each line got, by file and legend (0: an empty line)."""
    import matplotlib  # here, not at import: only drawing needs it, and it is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start, end = report["start"], report["end"]
    points: dict[str, Any] = {}
    for filename, (ylabel, exprs, scale) in plots(service).items():
        fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
        points[filename] = {}
        for label, expr in exprs.items():
            result = prom.query_range(expr, start, end, STEP_SECONDS)
            values = result[0].points if result else []
            ax.plot([t - start for t, _ in values], [v * scale for _, v in values], label=label)
            points[filename][label] = len(values)
        _shade_drills(ax, report)
        ax.set_xlabel("seconds since the load started")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / filename)
        plt.close(fig)
    return points


def _shade_drills(ax: Any, report: Mapping[str, Any]) -> None:
    """Red while a fault is on, green during a recovery; the gate phase stays clear."""
    start, top = report["start"], ax.get_ylim()[1]
    for index, phase in enumerate(report["phases"]):
        if phase["name"] == report["gate"]["phase"]:
            continue
        color = "tab:green" if phase["recovered"] is not None else "tab:red"
        ax.axvspan(phase["start"] - start, phase["end"] - start, color=color, alpha=0.10, lw=0)
        ax.text(
            phase["start"] - start + 0.5, top * (0.95 - 0.12 * (index % 2)), phase["name"],
            fontsize=7, va="top", color=color,
        )  # fmt: skip
