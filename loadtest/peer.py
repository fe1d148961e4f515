"""`make bench` variant (p): the same service instrumented the way most teams do it.

What a user would pick instead of app/tracing.py, app/metrics.py and app/logs.py, each with its
package's defaults, carrying the same signals:

- traces: ``opentelemetry-instrument`` (opentelemetry-distro) around gunicorn, which installs the SDK
  with a batch span processor and the OTLP exporter and instruments Flask and psycopg2 — a span per
  request and per query, exported over OTLP/HTTP to the same receiver as (b);
- metrics: prometheus-flask-exporter's ``GunicornInternalPrometheusMetrics`` (its multiprocess mode
  for gunicorn), RED metrics by route on the app's /metrics;
- logs: one JSON access line per request from python-json-logger, with the trace and span ids that
  opentelemetry-instrumentation-logging puts on every record (``OTEL_PYTHON_LOG_CORRELATION``).

The service under it is built with its own instrumentation off, as variant (c) runs it
(METRICS_ENABLED=false, LOG_LEVEL=WARNING; the auto-instrumented Flask class is already
instrumented, so app/tracing.py adds nothing). It runs in .venv-peer (loadtest/requirements-peer.in)
so that none of these packages reaches the service's own virtualenv.
"""

from __future__ import annotations

import logging
import sys
import time

from flask import Flask, Response, g, request
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics
from pythonjsonlogger.json import JsonFormatter

from app import create_app as create_service

# The fields the OpenTelemetry logging instrumentation adds to every record.
CORRELATION = "%(otelTraceID)s %(otelSpanID)s %(otelServiceName)s"


def create_app() -> Flask:
    """The service, with the peer's metrics and access log on top (gunicorn: ``loadtest.peer:create_app()``)."""
    app = create_service()
    GunicornInternalPrometheusMetrics(app, group_by="url_rule")

    access = logging.getLogger("peer.access")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(f"%(asctime)s %(levelname)s %(name)s %(message)s {CORRELATION}"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False

    @app.before_request
    def _start() -> None:
        g.peer_started = time.perf_counter()

    @app.after_request
    def _access(response: Response) -> Response:
        started = g.pop("peer_started", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 3) if started is not None else None
        access.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "route": request.url_rule.rule if request.url_rule else None,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response

    return app
