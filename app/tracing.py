"""OpenTelemetry tracing, configured by the standard OTEL_* variables.

With no OTLP endpoint set (and no exporter given by a test) nothing is installed: no SDK, no
instrumentation, so tracing costs nothing. The provider must be created in each gunicorn worker
after the fork (the batch exporter's thread does not survive a fork) and after gevent has patched the
worker (so that thread is a greenlet the hub schedules): :func:`init_app` installs it while the
worker loads the app, which gunicorn does after both (``preload_app = False``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from app import endpoints
from app.config import DEFAULT_BUILD_VERSION, DEFAULT_ENVIRONMENT

log = logging.getLogger(__name__)

# Spans per OTLP export, not the SDK's 512: in a gevent worker the exporter is a greenlet that nothing
# preempts, and encoding 512 spans held every request of the worker for ~20 ms. At 1,200 req/s
# open-loop (make bench, h2load) the p99 of the instrumented service was 28-35 ms with 512, 13-15 ms
# with 64 and 32; throughput within the noise (docs/performance.md).
EXPORT_BATCH = 64

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def export_configured(env: Mapping[str, str]) -> bool:
    """True when the OTEL_* variables ask for OTLP trace export."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def installed() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def install_provider(
    exporter: SpanExporter | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    processor: SpanProcessor | None = None,
    version: str = DEFAULT_BUILD_VERSION,
    environment: str = DEFAULT_ENVIRONMENT,
) -> bool:
    """Install the SDK provider once per process; return whether tracing is on.

    ``exporter`` (exported synchronously) and ``processor`` are for tests and loadtest/cost.py;
    otherwise the OTLP/HTTP exporter reads its endpoint, headers and timeout from OTEL_EXPORTER_OTLP_*.
    """
    if installed():
        return True
    if processor is None and exporter is not None:
        processor = SimpleSpanProcessor(exporter)
    if processor is None:
        if not export_configured(env):
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # OTEL_BSP_MAX_EXPORT_BATCH_SIZE, when set, wins over this default.
        batch = None if env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "").strip() else EXPORT_BATCH
        processor = BatchSpanProcessor(OTLPSpanExporter(), max_export_batch_size=batch)

    # Defaults only: what OTEL_RESOURCE_ATTRIBUTES or OTEL_SERVICE_NAME say wins (uat and prod both
    # run APP_ENV=production, so their overlays name the deployment environment there).
    given = {
        item.split("=", 1)[0].strip() for item in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",") if "=" in item
    }
    if env.get("OTEL_SERVICE_NAME"):
        given.add("service.name")
    defaults = {
        "service.name": endpoints.SERVICE_NAME,
        "service.version": version,
        "deployment.environment.name": environment,
    }
    attributes = {key: value for key, value in defaults.items() if key not in given}
    # The sampler comes from OTEL_TRACES_SAMPLER / _ARG (default: parent-based, always on).
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    # Patches psycopg2.connect, so every pooled connection opened from now on is traced.
    Psycopg2Instrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    log.info("tracing on: %s", type(getattr(processor, "span_exporter", processor)).__name__)
    return True


def init_app(app: Flask) -> None:
    """Trace requests (spans named by route, W3C traceparent honoured) when a provider is installed."""
    settings = app.config["SETTINGS"]
    if not install_provider(version=settings.build_version, environment=settings.env):
        return
    excluded = ",".join(f"{path}$" for path in endpoints.OPERATIONAL_PATHS)
    # Spans only: RED metrics are the service's own Prometheus histograms (app/metrics.py), so the
    # instrumentation's OpenTelemetry HTTP metrics would be work done twice; and the SQL commenter
    # context it attaches per request serves nothing (the psycopg2 instrumentation's is off).
    FlaskInstrumentor().instrument_app(  # type: ignore[no-untyped-call]
        app, excluded_urls=excluded, enable_commenter=False, meter_provider=NoOpMeterProvider()
    )


def shutdown() -> None:
    """Flush spans still in the batch queue (gunicorn ``worker_exit``)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
