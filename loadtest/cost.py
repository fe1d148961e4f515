"""Where a request's CPU goes: the service's WSGI app called in-process, one instrumentation layer at a time.

`make bench` runs this after its wrk rounds. Each row runs in a fresh interpreter (the OpenTelemetry
provider is process-wide), patched by gevent and with psycopg2's wait callback as a gunicorn worker
of app/worker.py has them. It builds the app, warms it up, then calls GET /api/v1/tasks/<id> through
the WSGI callable — no network, no gunicorn — and reports the best of five batches in µs of this
process's CPU per request; each row runs three times, interleaved, and its median is the figure.
CPU time, not wall time: PostgreSQL's share of a round trip is another process's, and the span
exporter's work (a greenlet, like in the worker) is counted because each batch ends by flushing it
to the sink.

The rows add one layer each, so the difference between a row and the one above it is that layer's
cost; the last layered row is the fully instrumented service, as a worker runs it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500
BATCHES = 5
# Rows are run this many times, interleaved; a row's figure is the median (one interpreter can be unlucky).
REPEATS = 3


class CostError(Exception):
    """A row could not be measured (the child failed: the app did not answer 200, say)."""


# The service's own signals off (no tracing is the absence of OTEL_*): bench's variant (c), the peer's
# base (it brings its own metrics and logs), and the first row here.
UNINSTRUMENTED = {"METRICS_ENABLED": "false", "LOG_LEVEL": "WARNING"}

# Each row adds its variables to the row above it (TRACE is read by the child, below).
LAYERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("bare service", UNINSTRUMENTED),
    ("+ Prometheus metrics (multiprocess files)", {"METRICS_ENABLED": "true"}),
    ("+ JSON access line", {"LOG_LEVEL": "INFO"}),
    ("+ Flask instrumentation, spans not recorded", {"TRACE": "flask-unsampled"}),
    ("+ server span recorded", {"TRACE": "flask"}),
    ("+ psycopg2 instrumentation and its span", {"TRACE": "flask+db"}),
    ("+ batch span processor and OTLP/HTTP export", {"TRACE": "export"}),
)
FULL = LAYERS[-1][0]
# Beside the layers, for reading them: the same service with 10 % of traces sampled at the source.
EXTRA: tuple[tuple[str, dict[str, str]], ...] = (
    ("fully instrumented, 10 % sampled", {"TRACE": "export", "SAMPLE": "0.1"}),
)


def configurations() -> dict[str, dict[str, str]]:
    """Every row's full environment, the layers accumulated."""
    rows: dict[str, dict[str, str]] = {}
    so_far: dict[str, str] = {}
    for name, env in LAYERS:
        so_far = {**so_far, **env}
        rows[name] = so_far
    for name, env in EXTRA:
        rows[name] = {**so_far, **env}
    return rows


def _trace(mode: str, sink_url: str, sample: str | None) -> None:
    """Set up tracing as the row asks, through the service's own app/tracing.py where it can."""
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    from app import tracing

    class Drop(SpanProcessor):
        """Receives every ended span and keeps none: spans are made, nothing processes them."""

        def on_end(self, span: ReadableSpan) -> None:
            pass

    # The SDK reads its sampler and the exporter its endpoint from the environment: this child's own.
    for name in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[name]
    if mode == "flask-unsampled":
        os.environ["OTEL_TRACES_SAMPLER"] = "always_off"
    if sample:
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = sample
    if mode == "export":
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink_url
        assert tracing.install_provider()
    else:
        assert tracing.install_provider(processor=Drop())
    if mode in ("flask-unsampled", "flask"):
        Psycopg2Instrumentor().uninstrument()


def _measure_here(database_url: str, task_id: int, sink_url: str) -> float:
    """In the child: build the app as the environment says, return the best CPU µs per request."""
    import logging

    import psycopg2.extensions
    from opentelemetry import trace
    from werkzeug.test import EnvironBuilder

    from app import create_app, endpoints
    from app.worker import green_wait_callback

    psycopg2.extensions.set_wait_callback(green_wait_callback(5.0, 30.0))
    mode = os.environ.get("TRACE")
    if mode:
        _trace(mode, sink_url, os.environ.get("SAMPLE"))
    app = create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "cost-secret-key-0123456789abcdef0123",
            "DATABASE_URL": database_url,
            "METRICS_ENABLED": os.environ["METRICS_ENABLED"],
            "LOG_LEVEL": os.environ["LOG_LEVEL"],
        }
    )
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    path = f"{endpoints.API_PREFIX}/tasks/{task_id}"
    environ = EnvironBuilder(path=path).get_environ()
    provider = trace.get_tracer_provider()
    flush: Callable[[], object] = getattr(provider, "force_flush", lambda: None)

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], object]:
        if not status.startswith("200"):
            raise RuntimeError(f"GET {path} answered {status}")
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
    flush()
    best = float("inf")
    for _ in range(BATCHES):
        started = time.process_time()
        for _ in range(BATCH):
            call()
        flush()
        best = min(best, (time.process_time() - started) / BATCH * 1e6)
    return best


def measure(database_url: str, task_id: int, workdir: Path, sink_url: str) -> dict[str, float]:
    """CPU µs per request for every row: the median of REPEATS interleaved runs, each in its own interpreter."""
    runs: dict[str, list[float]] = {name: [] for name in configurations()}
    for _ in range(REPEATS):
        for name, env in configurations().items():
            runs[name].append(_run_child(name, env, database_url, task_id, workdir, sink_url))
    return {name: round(statistics.median(values), 1) for name, values in runs.items()}


def _run_child(name: str, env: dict[str, str], database_url: str, task_id: int, workdir: Path, sink_url: str) -> float:
    metrics_dir = workdir / "cost-metrics"
    metrics_dir.mkdir(exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **env,
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "loadtest.cost", database_url, str(task_id), sink_url],
        env=child_env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise CostError(f"loadtest.cost {name!r} failed:\n{result.stderr[-2000:]}")
    micros = float(json.loads(result.stdout.strip().splitlines()[-1])["us_per_request"])
    if not micros > 0:
        raise CostError(f"loadtest.cost {name!r} measured {micros} µs per request")
    return micros


if __name__ == "__main__":
    # As a gunicorn worker of app/worker.py runs: gevent patches the process before the app loads.
    from gevent import monkey

    monkey.patch_all()
    print(json.dumps({"us_per_request": _measure_here(sys.argv[1], int(sys.argv[2]), sys.argv[3])}))
