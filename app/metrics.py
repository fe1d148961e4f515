"""Prometheus metrics: RED per route template, in-flight requests, the pool, queries, business counters.

Names and label sets come from :mod:`app.metric_names`.

Why several sync workers and prometheus-client's multiprocess mode rather than one worker with
threads, by measurement (`python -m loadtest.bench --worker-models`: the instrumented service, wrk
-t2 -c32 on GET /api/v1/tasks/<id>, interleaved, on a 2-core machine, 2026-11-26):

    2 sync workers                  635-1089 req/s   p99  74-99 ms
    1 gthread worker x 8 threads     195 req/s       p99 276-302 ms
    2 gthread workers x 4 threads   284-324 req/s    p99 219-231 ms

Threads share one interpreter lock, and the per-request Python work (Flask, tracing, logging) is
CPU-bound, so a process per core wins on throughput and on the p99 the latency SLO reads.
Multiprocess mode is what makes /metrics correct across those workers; its cost is that exemplars
are not kept. With ``PROMETHEUS_MULTIPROC_DIR`` unset (tests, one process) the same code exposes one
registry and keeps exemplars.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from flask import Flask, Response, g, request
from opentelemetry import trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.openmetrics import exposition as openmetrics

from app import endpoints
from app import metric_names as names

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _make(metric: names.Metric, registry: CollectorRegistry) -> Any:
    common: dict[str, Any] = {"labelnames": metric.labels, "registry": registry}
    if metric.kind == "counter":
        # prometheus-client appends _total itself.
        return Counter(metric.name, metric.help, **common)
    if metric.kind == "histogram":
        return Histogram(metric.name, metric.help, buckets=metric.buckets, **common)
    return Gauge(metric.name, metric.help, multiprocess_mode=metric.multiprocess_mode, **common)


@cache
def route_template(rule: str) -> str:
    """A Flask rule as an OpenAPI path template: ``/tasks/<id:task_id>`` → ``/tasks/{task_id}``."""
    out = []
    for part in rule.split("/"):
        if part.startswith("<") and part.endswith(">"):
            part = "{" + part[1:-1].split(":")[-1] + "}"
        out.append(part)
    return "/".join(out)


def current_route() -> str:
    """The matched route template of the current request, or the fixed "unmatched" value."""
    rule = request.url_rule
    return route_template(rule.rule) if rule is not None else names.UNMATCHED_ROUTE


class Metrics:
    """The service's metric objects, on a registry of the app's own so factories can run twice."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = _make(names.HTTP_REQUESTS, r)
        self.duration = _make(names.HTTP_REQUEST_DURATION, r)
        self.in_flight = _make(names.HTTP_REQUESTS_IN_FLIGHT, r)
        self.pool_in_use = _make(names.DB_POOL_CONNECTIONS_IN_USE, r)
        self.pool_max = _make(names.DB_POOL_CONNECTIONS_MAX, r)
        self.db_query_duration = _make(names.DB_QUERY_DURATION, r)
        self.db_errors = _make(names.DB_ERRORS, r)
        self.tasks_created = _make(names.TASKS_CREATED, r)
        self.tasks_completed = _make(names.TASKS_COMPLETED, r)
        self.faults_injected = _make(names.FAULTS_INJECTED, r)
        self.build_info = _make(names.BUILD_INFO, r)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def init_app(self, app: Flask, *, version: str, commit: str) -> None:
        app.extensions["metrics"] = self
        self.build_info.labels(version, commit).set(1)
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        # Registered first, so the timer covers every later hook (fault injection included).
        app.before_request(self._start)
        app.after_request(self._finish)
        app.teardown_request(self._teardown)
        app.add_url_rule(endpoints.METRICS, "metrics", self._expose, methods=["GET"])

    def declare_series(self, app: Flask, operations: tuple[str, ...]) -> None:
        """Create, at zero, the error series an SLO or alert reads.

        A counter series is born with its first increment, and rate() cannot see the increment a
        series is born with: without this, the first burst of 5xx after a start would be invisible
        to the availability SLI. Every route × method × server-error status, and every operation's
        database errors, exist from the first scrape.
        """
        for rule in app.url_map.iter_rules():
            if rule.rule in endpoints.OPERATIONAL_PATHS or rule.endpoint == "static":
                continue
            route = route_template(rule.rule)
            for method in sorted((rule.methods or set()) & _KNOWN_METHODS - {"HEAD", "OPTIONS"}):
                for status in names.SERVER_ERROR_STATUSES:
                    self.requests.labels(route, method, status)
        for operation in operations:
            self.db_errors.labels(operation)

    def _start(self) -> None:
        g.metrics_started = time.perf_counter()
        self.in_flight.inc()

    def _finish(self, response: Response) -> Response:
        started = g.pop("metrics_started", None)
        if started is None:
            return response
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _KNOWN_METHODS else names.OTHER_METHOD
        requests, duration = self._series(current_route(), method, response.status_code)
        requests.inc()
        if self.multiprocess:  # multiprocess files keep no exemplars: do not build one to drop
            duration.observe(elapsed)
        else:
            duration.observe(elapsed, exemplar=_exemplar())
        self.in_flight.dec()
        return response

    def _series(self, route: str, method: str, status: int) -> tuple[Any, Any]:
        """The request counter's and duration histogram's children for one answer, looked up once.

        ``.labels()`` validates and locks on every call; the children never change, and their number
        is bounded by routes × methods × statuses, so they are kept here after the first request.
        """
        key = (route, method, status)
        series = self._children.get(key)
        if series is None:
            series = (
                self.requests.labels(route, method, str(status)),
                self.duration.labels(route, method, f"{status // 100}xx"),
            )
            self._children[key] = series
        return series

    def _teardown(self, _exc: BaseException | None) -> None:
        # after_request is skipped when a response could not be built at all; do not leak in-flight.
        if g.pop("metrics_started", None) is not None:
            self.in_flight.dec()

    def _expose(self) -> Response:
        # content_type, not mimetype: the constants carry their charset, and Werkzeug appends another
        # to a text/ mimetype (";charset=utf-8; charset=utf-8", which strict scrapers refuse).
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
        if "application/openmetrics-text" in request.headers.get("Accept", ""):
            # Exemplars exist only in the OpenMetrics format.
            return Response(openmetrics.generate_latest(self.registry), content_type=openmetrics.CONTENT_TYPE_LATEST)  # type: ignore[no-untyped-call]
        return Response(generate_latest(self.registry), content_type=CONTENT_TYPE_LATEST)


def _exemplar() -> dict[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return {names.TRACE_ID: format(context.trace_id, "032x")}


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (gunicorn ``child_exit``)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
