"""Service overview: rate, errors and duration per route, saturation, and the errors to look at first."""

from __future__ import annotations

from app import endpoints
from app import metric_names as names
from dashboards.builder import Dashboard, Panel, Query, Row, logs_for_route, sel
from dashboards.src.traffic import RATE, error_ratio, latency_quantile, request_rate, requests

UID = "taskboard-service"


def dashboard() -> Dashboard:
    route = names.ROUTE
    readyz_503 = sel(names.HTTP_REQUESTS.total, f'{route}="{endpoints.READYZ}"', f'{names.STATUS}="503"')
    failed = requests(f'{names.STATUS}=~"4..|{names.SERVER_ERROR_MATCHER}"')
    by_request = f"{route}, {names.METHOD}, {names.STATUS}"
    return Dashboard(
        uid=UID,
        title="Task board / Service overview",
        description="RED per route of user traffic (as the SLOs count it), saturation, and top errors.",
        rows=[
            Row(
                "Traffic, errors, duration",
                [
                    Panel(
                        "Requests per second by route",
                        [Query(request_rate(route), f"{{{{{route}}}}}")],
                        unit="reqps",
                        links=[logs_for_route()],
                    ),
                    Panel(
                        "5xx ratio by route",
                        [Query(error_ratio(route), f"{{{{{route}}}}}")],
                        unit="percentunit",
                        links=[logs_for_route()],
                        thresholds=(("green", None), ("red", 0.05)),
                    ),
                    Panel(
                        "Latency percentiles (exemplars link to traces)",
                        [
                            Query(latency_quantile(0.5), "p50", exemplar=True),
                            Query(latency_quantile(0.95), "p95", exemplar=True),
                            Query(latency_quantile(0.99), "p99", exemplar=True),
                        ],
                        unit="s",
                    ),
                    Panel(
                        "p99 latency by route",
                        [Query(latency_quantile(0.99, route), f"{{{{{route}}}}}", exemplar=True)],
                        unit="s",
                        width=12,
                        links=[logs_for_route()],
                    ),
                    Panel(
                        "Responses by status",
                        [Query(request_rate(names.STATUS), f"{{{{{names.STATUS}}}}}")],
                        unit="reqps",
                        width=12,
                        stacked=True,
                    ),
                ],
            ),
            Row(
                "Saturation",
                [
                    Panel(
                        "Requests in flight",
                        [Query(f"sum by (instance) ({sel(names.HTTP_REQUESTS_IN_FLIGHT.name)})", "{{instance}}")],
                        description="Each gunicorn sync worker serves one request at a time: near the worker count, "
                        "requests queue.",
                    ),
                    Panel(
                        "Database pool in use",
                        [
                            Query(
                                f"sum by (instance) ({sel(names.DB_POOL_CONNECTIONS_IN_USE.name)})\n/\n"
                                f"sum by (instance) ({sel(names.DB_POOL_CONNECTIONS_MAX.name)})",
                                "{{instance}}",
                            )
                        ],
                        unit="percentunit",
                        min=0,
                        max=1,
                    ),
                    Panel(
                        "Readiness probes answered 503",
                        [
                            Query(
                                f"sum by (instance) (rate({readyz_503}[{RATE}]))",
                                "{{instance}}",
                            )
                        ],
                        unit="reqps",
                    ),
                ],
            ),
            Row(
                "Errors",
                [
                    Panel(
                        "Top errors over the time range",
                        [
                            Query(
                                f"topk(10, sum by ({by_request}) (increase({failed}[$__range])) > 0)",
                                instant=True,
                                table=True,
                            )
                        ],
                        kind="table",
                        width=12,
                        links=[logs_for_route()],
                    ),
                    Panel(
                        "Faults injected (drills)",
                        [
                            Query(
                                f"sum by ({route}, {names.FAULT}) (rate({sel(names.FAULTS_INJECTED.total)}[{RATE}]))",
                                f"{{{{{route}}}}} {{{{{names.FAULT}}}}}",
                            )
                        ],
                        unit="ops",
                        width=6,
                        description="Non-zero only while a fault-injection drill is on (never in production).",
                    ),
                    Panel(
                        "Running build",
                        [
                            Query(
                                f"count by ({names.VERSION}, {names.COMMIT}) ({sel(names.BUILD_INFO.name)})",
                                instant=True,
                                table=True,
                            )
                        ],
                        kind="table",
                        width=6,
                    ),
                ],
            ),
        ],
    )
