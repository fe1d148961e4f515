"""`python -m loadtest.bench --worker-models`: the instrumented service on gevent, sync and threaded workers.

The measurement behind the worker model (docs/adr/0005, docs/adr/0011): the same service, the same
instrumentation, on the same PostgreSQL, interleaved wrk rounds; each worker model with the pool
size it needs (one connection per sync or gevent worker, one per thread otherwise).
"""

from __future__ import annotations

import argparse

from loadtest import bench_report
from loadtest.bench import Variant, database, interleaved, servers


def compare(sink_url: str, args: argparse.Namespace) -> int:
    """`--worker-models`: the instrumented service on its gevent workers vs sync and threaded ones (ADR 0005)."""
    instrumented = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "LOG_LEVEL": "INFO"}
    # (key, label, pool size, gunicorn flags): one pooled connection per process worker, one per thread.
    models = (
        ("gevent", "2 gevent workers (app/worker.py, the default)", 1, ("-w", "2")),
        ("sync", "2 sync workers", 1, ("-w", "2", "-k", "sync")),
        ("gthread-1x8", "1 gthread worker x 8 threads", 8, ("-w", "1", "-k", "gthread", "--threads", "8")),
        ("gthread-2x4", "2 gthread workers x 4 threads", 4, ("-w", "2", "-k", "gthread", "--threads", "4")),
    )
    variants = [
        Variant(key, label, "app:create_app()", {**instrumented, "DB_POOL_MAX": str(pool)}, flags)
        for key, label, pool, flags in models
    ]
    with database() as (url, workdir), servers(variants, url, workdir, args.out / "logs") as urls:
        measurements = interleaved(variants, urls, args)
    bench_report.require_measured(measurements, [v.key for v in variants])
    medians = bench_report.medians(measurements, [v.key for v in variants])
    lines = ["| worker model | req/s | p50 ms | p99 ms (median) | p99 ms (worst round) |", "|---|---:|---:|---:|---:|"]
    for variant in variants:
        m = medians[variant.key]
        worst = max(r.p99_ms for r in measurements if r.variant == variant.key)
        rps, p50, p99 = m["requests_per_second"], m["p50_ms"], m["p99_ms"]
        lines.append(f"| {variant.label} | {rps:.0f} | {p50:.1f} | {p99:.1f} | {worst:.1f} |")
    report = "# Worker models, instrumented service, GET /api/v1/tasks/<id>\n\n" + "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "worker-models.md").write_text(report)
    print("\n" + report)
    return 0
