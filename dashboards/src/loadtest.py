"""Load test: what the service sees while Locust runs (make loadtest): rate, percentiles, errors, saturation.

Locust reports its own client-side view; this dashboard is the server side of the same run, on a short
time range with a fast refresh.
"""

from __future__ import annotations

from app import metric_names as names
from dashboards.builder import Dashboard, Panel, Query, Row, logs_for_route, sel
from dashboards.src.traffic import RATE, error_ratio, latency_quantile, latency_threshold, request_rate, slos
from dashboards.src.traffic import share_faster_than_threshold as faster

UID = "taskboard-loadtest"


def dashboard() -> Dashboard:
    latency_slo = next(s for s in slos().slos if s.name == "latency")
    return Dashboard(
        uid=UID,
        title="Task board / Load test",
        description="The server side of a load test: throughput, latency percentiles, errors, saturation.",
        rows=[
            Row(
                "Throughput and latency",
                [
                    Panel(
                        "Requests per second",
                        [Query(request_rate(), "total"), Query(request_rate(names.ROUTE), f"{{{{{names.ROUTE}}}}}")],
                        unit="reqps",
                        width=12,
                        links=[logs_for_route()],
                    ),
                    Panel(
                        "Latency percentiles",
                        [Query(latency_quantile(q), f"p{q * 100:g}", exemplar=True) for q in (0.5, 0.9, 0.95, 0.99)],
                        unit="s",
                        width=12,
                        thresholds=(("green", None), ("red", latency_threshold())),
                    ),
                    Panel(
                        f"Requests faster than {latency_threshold() * 1000:g} ms (latency SLI)",
                        [Query(faster(), "faster than threshold")],
                        unit="percentunit",
                        width=12,
                        thresholds=(("red", None), ("green", float(latency_slo.objective))),
                    ),
                    Panel(
                        "Error ratio: 5xx and 4xx",
                        [
                            Query(error_ratio(statuses=names.SERVER_ERROR_MATCHER), "5xx"),
                            Query(error_ratio(statuses="4.."), "4xx"),
                        ],
                        unit="percentunit",
                        width=12,
                    ),
                ],
            ),
            Row(
                "Saturation",
                [
                    Panel(
                        "Requests in flight",
                        [Query(f"sum({sel(names.HTTP_REQUESTS_IN_FLIGHT.name)})", "in flight")],
                    ),
                    Panel(
                        "Database pool in use",
                        [
                            Query(f"sum({sel(names.DB_POOL_CONNECTIONS_IN_USE.name)})", "in use"),
                            Query(f"sum({sel(names.DB_POOL_CONNECTIONS_MAX.name)})", "max"),
                        ],
                    ),
                    Panel(
                        "Responses by status",
                        [Query(request_rate(names.STATUS), f"{{{{{names.STATUS}}}}}")],
                        unit="reqps",
                        stacked=True,
                    ),
                    Panel(
                        "Tasks created and completed per second",
                        [
                            Query(f"sum(rate({sel(names.TASKS_CREATED.total)}[{RATE}]))", "created"),
                            Query(f"sum(rate({sel(names.TASKS_COMPLETED.total)}[{RATE}]))", "completed"),
                        ],
                        unit="ops",
                        width=12,
                    ),
                    Panel(
                        "Faults injected during the run",
                        [
                            Query(
                                f"sum by ({names.FAULT}) (rate({sel(names.FAULTS_INJECTED.total)}[{RATE}]))",
                                f"{{{{{names.FAULT}}}}}",
                            )
                        ],
                        unit="ops",
                        width=12,
                    ),
                ],
            ),
        ],
        time_from="now-30m",
        refresh="10s",
    )
