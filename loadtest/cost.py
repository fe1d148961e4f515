"""Where a request's CPU goes: the service's WSGI app called in-process, one instrumentation at a time.

`make bench` runs this after its wrk rounds. Each configuration runs in a fresh interpreter (the
OpenTelemetry provider is process-wide) that builds the app, warms it up, then times GET
/api/v1/tasks/<id> through the WSGI callable — no network, no gunicorn — and reports the best of
five batches in µs per request. The differences between rows are what each part costs; the
absolute numbers include one PostgreSQL round trip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500
BATCHES = 5

# What each row turns on, on top of the bare service (metrics off, access log off, no tracing).
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "bare service": {},
    "+ metrics": {"METRICS_ENABLED": "true"},
    "+ JSON access log": {"LOG_LEVEL": "INFO"},
    "+ tracing (every trace)": {"TRACE": "always"},
    "+ tracing (10 % sampled)": {"TRACE": "ratio"},
    "fully instrumented": {"METRICS_ENABLED": "true", "LOG_LEVEL": "INFO", "TRACE": "always"},
}


def _measure_here(database_url: str, task_id: int) -> float:
    """In the child: build the app as the environment says, return the best µs per request."""
    import logging

    from opentelemetry import trace
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from werkzeug.test import EnvironBuilder

    from app import create_app

    class Discard(SpanExporter):
        """Exports nothing: the collector's cost is not the service's; the batching is."""

        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    mode = os.environ.get("TRACE")
    if mode:
        sampler = ParentBased(TraceIdRatioBased(0.1)) if mode == "ratio" else None
        provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Discard()))
        trace.set_tracer_provider(provider)
        Psycopg2Instrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    app = create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "cost-secret-key-0123456789abcdef0123",
            "DATABASE_URL": database_url,
            "METRICS_ENABLED": os.environ.get("METRICS_ENABLED", "false"),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    environ = EnvironBuilder(path=f"/api/v1/tasks/{task_id}").get_environ()

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        return lambda data: None

    def call() -> None:
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    for _ in range(200):
        call()
    best = float("inf")
    for _ in range(BATCHES):
        started = time.perf_counter()
        for _ in range(BATCH):
            call()
        best = min(best, (time.perf_counter() - started) / BATCH * 1e6)
    return best


def measure(database_url: str, task_id: int, workdir: Path) -> dict[str, float]:
    """µs per request for every configuration, each in its own interpreter."""
    costs: dict[str, float] = {}
    for name, env in CONFIGURATIONS.items():
        child_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "cost-metrics"),
            **env,
        }
        (workdir / "cost-metrics").mkdir(exist_ok=True)
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "loadtest.cost", database_url, str(task_id)],
            env=child_env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        costs[name] = round(json.loads(result.stdout.strip().splitlines()[-1])["us_per_request"], 1)
    return costs


if __name__ == "__main__":
    print(json.dumps({"us_per_request": _measure_here(sys.argv[1], int(sys.argv[2]))}))
