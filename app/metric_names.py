"""Every metric and label the service exposes: the one source that rules, dashboards and tests import.

This module holds names and shapes only (no prometheus-client objects), so that generators under
``observability/`` and ``dashboards/`` can import it without pulling in Flask or starting anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NAMESPACE = "taskboard"

# Label names.
ROUTE = "route"  # the route template, e.g. /api/v1/tasks/{task_id}; never a raw path
METHOD = "method"
STATUS = "status"  # the response code, e.g. "201"
STATUS_CLASS = "status_class"  # "2xx" .. "5xx"
OPERATION = "operation"  # a named database query, e.g. "get_task"
FAULT = "fault"  # "latency" or "error"
VERSION = "version"
COMMIT = "commit"
# The exemplar label on latency buckets, and the log field, that carries a trace id: the Prometheus
# data source links it to Jaeger, OpenSearch searches logs by it.
TRACE_ID = "trace_id"
SPAN_ID = "span_id"

# The server errors the service answers with (500: a fault, injected or not; 503: PostgreSQL did not
# answer). Their series exist from the start, so rate() sees the first burst (app/metrics.py).
SERVER_ERROR_STATUSES: tuple[str, ...] = ("500", "503")
# What every rule, alert, dashboard and the SLO gate count as a server error: the PromQL regex on
# STATUS (any 5xx, not only the two above: a proxy in front may answer others).
SERVER_ERROR_MATCHER = "5.."

# Label values the service emits when a request matched no route or used an unknown method, so
# that a scan of random URLs cannot grow the number of series.
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "OTHER"

# The latency SLO threshold (observability/slo/*.yaml) must be one of these bounds, so that the SLI
# is an exact bucket count rather than an interpolation; a test enforces it.
REQUEST_DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
QUERY_DURATION_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

Kind = Literal["counter", "gauge", "histogram", "info"]

# How gauges combine across gunicorn workers in prometheus-client's multiprocess mode.
MultiprocessMode = Literal["livesum", "max", "all"]


@dataclass(frozen=True)
class Metric:
    """The name, type, labels and help text of one exposed metric family."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    multiprocess_mode: MultiprocessMode = "livesum"

    @property
    def series(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this family."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)

    @property
    def total(self) -> str:
        """The counter's sample name (``<name>_total``)."""
        assert self.kind == "counter", self.name
        return f"{self.name}_total"

    @property
    def bucket(self) -> str:
        assert self.kind == "histogram", self.name
        return f"{self.name}_bucket"

    @property
    def count(self) -> str:
        assert self.kind == "histogram", self.name
        return f"{self.name}_count"

    @property
    def sum(self) -> str:
        assert self.kind == "histogram", self.name
        return f"{self.name}_sum"


HTTP_REQUESTS = Metric(
    f"{NAMESPACE}_http_requests",
    "counter",
    "HTTP requests answered, by route template, method and response code.",
    (ROUTE, METHOD, STATUS),
)
HTTP_REQUEST_DURATION = Metric(
    f"{NAMESPACE}_http_request_duration_seconds",
    "histogram",
    "Time from the first byte of a request to its response, by route template, method and status class.",
    (ROUTE, METHOD, STATUS_CLASS),
    buckets=REQUEST_DURATION_BUCKETS,
)
HTTP_REQUESTS_IN_FLIGHT = Metric(
    f"{NAMESPACE}_http_requests_in_flight",
    "gauge",
    "Requests being served right now.",
)
DB_POOL_CONNECTIONS_IN_USE = Metric(
    f"{NAMESPACE}_db_pool_connections_in_use",
    "gauge",
    "Database connections checked out of the pool.",
)
DB_POOL_CONNECTIONS_MAX = Metric(
    f"{NAMESPACE}_db_pool_connections_max",
    "gauge",
    "The most connections the pool may open (summed over workers).",
)
DB_QUERY_DURATION = Metric(
    f"{NAMESPACE}_db_query_duration_seconds",
    "histogram",
    "Time spent in one named database operation, connection checkout excluded.",
    (OPERATION,),
    buckets=QUERY_DURATION_BUCKETS,
)
DB_ERRORS = Metric(
    f"{NAMESPACE}_db_errors",
    "counter",
    "Database operations that failed because PostgreSQL was unreachable or timed out.",
    (OPERATION,),
)
TASKS_CREATED = Metric(
    f"{NAMESPACE}_tasks_created",
    "counter",
    "Tasks created (committed).",
)
TASKS_COMPLETED = Metric(
    f"{NAMESPACE}_tasks_completed",
    "counter",
    "Tasks moved to the done status (committed).",
)
FAULTS_INJECTED = Metric(
    f"{NAMESPACE}_faults_injected",
    "counter",
    "Faults added by the fault-injection drill switch, by route template and kind.",
    (ROUTE, FAULT),
)
BUILD_INFO = Metric(
    f"{NAMESPACE}_build_info",
    "gauge",
    "Always 1; labelled with the running build's version and commit.",
    (VERSION, COMMIT),
    multiprocess_mode="max",
)

ALL: tuple[Metric, ...] = (
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS_IN_FLIGHT,
    DB_POOL_CONNECTIONS_IN_USE,
    DB_POOL_CONNECTIONS_MAX,
    DB_QUERY_DURATION,
    DB_ERRORS,
    TASKS_CREATED,
    TASKS_COMPLETED,
    FAULTS_INJECTED,
    BUILD_INFO,
)
