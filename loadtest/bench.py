"""`make bench`: the service against a bare baseline, interleaved in one run on one machine.

Three servers under the same gunicorn config file and settings, on one PostgreSQL:
  (a) baseline      loadtest/baseline.py — bare WSGI + psycopg2, the same SELECT and JSON;
  (b) instrumented  the service: traces exported over OTLP/HTTP to a local sink, metrics, JSON logs;
  (c) bare service  the same service with tracing off, METRICS_ENABLED=false and LOG_LEVEL=WARNING;
  (d) sampled       (b) with 10 % of traces sampled at the source (OTEL_TRACES_SAMPLER), for comparison.
wrk drives GET /api/v1/tasks/<id> on 127.0.0.1 (-t2 -c32 by default), rounds interleaved a, b, d, c, …,
and the medians are compared as ratios: b/a and b/c (plus c/a and d/c to read them). Only ratios within
one run mean anything.
Targets (reported, never asserted): b/a ≥ 0.60, b/c ≥ 0.85, p99(b) ≤ 25 ms at 32 connections.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from app import endpoints
from app.migrate import upgrade
from loadtest import capacity, cost
from local.postgres import EmbeddedPostgres
from local.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "bench"
TARGETS = {"b/a": 0.60, "b/c": 0.85, "p99_b_ms": 25.0}
ROWS = 1000


@dataclass(frozen=True)
class Measurement:
    variant: str
    round: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    app: str
    env: dict[str, str]
    gunicorn_args: tuple[str, ...] = ()  # after -c app/gunicorn.conf.py, so they override it


class _Sink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and drops them: the collector's cost is not the service's."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    """Requests/s, p50 and p99 (ms), and errors (non-2xx plus socket errors) from `wrk --latency`."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _duration_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _duration_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(non_2xx.group(1))
    if sockets := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(n) for n in sockets.groups())
    return rps, p50, p99, errors


def wrk(url: str, seconds: int, connections: int, threads: int) -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("make bench: wrk not found (the Debian package wrk; make bench installs it)")
    result = subprocess.run(  # noqa: S603
        [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@contextmanager
def servers(variants: list[Variant], database_url: str, workdir: Path) -> Iterator[dict[str, tuple[str, int]]]:
    """Start one gunicorn per variant; yield their base URLs and master pids."""
    processes: list[subprocess.Popen[bytes]] = []
    urls: dict[str, tuple[str, int]] = {}
    try:
        for variant in variants:
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
                "APP_ENV": "production",
                "SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
                "DATABASE_URL": database_url,
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "GUNICORN_WORKERS": os.environ.get("GUNICORN_WORKERS", "2"),
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{variant.key}"),
                **variant.env,
            }
            log = (workdir / f"{variant.key}.log").open("wb")
            processes.append(
                subprocess.Popen(  # noqa: S603
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "-c",
                        "app/gunicorn.conf.py",
                        *variant.gunicorn_args,
                        variant.app,
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()
            urls[variant.key] = (f"http://127.0.0.1:{port}", processes[-1].pid)
        for key, (url, _pid) in urls.items():
            _wait(f"{url}{endpoints.API_PREFIX}/tasks/1", key)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def _wait(url: str, key: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"make bench: server {key} did not answer {url}")


def seed(url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO tasks (title, status) SELECT 'bench task ' || n, 'todo' FROM generate_series(1, %s) AS n",
            (ROWS,),
        )
    conn.close()


def summarise(measurements: list[Measurement], variants: list[Variant]) -> dict[str, Any]:
    medians: dict[str, dict[str, float]] = {}
    for variant in variants:
        rows = [m for m in measurements if m.variant == variant.key]
        medians[variant.key] = {
            "requests_per_second": statistics.median(m.requests_per_second for m in rows),
            "p50_ms": statistics.median(m.p50_ms for m in rows),
            "p99_ms": statistics.median(m.p99_ms for m in rows),
            "errors": sum(m.errors for m in rows),
        }
    a, b, c, d = (medians[k]["requests_per_second"] for k in ("a", "b", "c", "d"))
    ratios = {
        "b/a": round(b / a, 3),
        "b/c": round(b / c, 3),
        "p99_b_ms": medians["b"]["p99_ms"],
        "c/a": round(c / a, 3),
        "d/c": round(d / c, 3),
    }
    return {
        "variants": {v.key: v.label for v in variants},
        "medians": medians,
        "ratios": ratios,
        "targets": TARGETS,
        "met": {
            "b/a": ratios["b/a"] >= TARGETS["b/a"],
            "b/c": ratios["b/c"] >= TARGETS["b/c"],
            "p99_b_ms": ratios["p99_b_ms"] <= TARGETS["p99_b_ms"],
        },
    }


def markdown(summary: dict[str, Any], settings: dict[str, Any]) -> str:
    lines = [
        "# Benchmark: GET /api/v1/tasks/<id>",
        "",
        f"wrk -t{settings['threads']} -c{settings['connections']}, {settings['rounds']} interleaved rounds of "
        f"{settings['seconds']} s, gunicorn {settings['workers']} workers of app/worker.py (gevent), one machine "
        f"({os.cpu_count()} cores).",
        "",
        "| variant | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in summary["variants"].items():
        m = summary["medians"][key]
        rps, p50, p99 = m["requests_per_second"], m["p50_ms"], m["p99_ms"]
        lines.append(f"| ({key}) {label} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {m['errors']} |")
    r, t, met = summary["ratios"], summary["targets"], summary["met"]
    lines += [
        "",
        "| ratio | measured | target | met |",
        "|---|---:|---:|:---:|",
        f"| b/a (service vs bare baseline) | {r['b/a']:.2f} | ≥ {t['b/a']:.2f} | {'yes' if met['b/a'] else 'no'} |",
        f"| b/c (instrumented vs not) | {r['b/c']:.2f} | ≥ {t['b/c']:.2f} | {'yes' if met['b/c'] else 'no'} |",
        f"| p99 of (b), ms | {r['p99_b_ms']:.1f} | ≤ {t['p99_b_ms']:.0f} | {'yes' if met['p99_b_ms'] else 'no'} |",
        "",
        f"For reading them: c/a (the framework's cost) {r['c/a']:.2f}; d/c (instrumented with 10 % head "
        f"sampling vs none) {r['d/c']:.2f}.",
        "",
        "## Where a request's CPU goes (loadtest/cost.py: in-process, best of 5 × 500 calls)",
        "",
        "| configuration | µs per request | vs bare service |",
        "|---|---:|---:|",
    ]
    costs = summary.get("cost_us_per_request", {})
    bare = costs.get("bare service")
    for name, micros in costs.items():
        delta = f"+{micros - bare:.0f}" if bare is not None and name != "bare service" else ""
        lines.append(f"| {name} | {micros:.0f} | {delta} |")
    if mix := summary.get("capacity"):
        per_worker = ", ".join(f"{rate} req/s at {u}" for u, rate in mix["requests_per_second_per_worker"].items())
        lines += [
            "",
            "## Capacity of the user mix (loadtest/capacity.py)",
            "",
            f"The Locust mix against (b) for {mix['seconds']} s: {mix['requests']} requests cost the "
            f"{mix['workers']} workers {mix['cpu_seconds']} CPU seconds, {mix['cpu_ms_per_request']} ms each. "
            f"One worker (one core) sustains {per_worker} CPU. docs/capacity.md turns this into the HPA "
            "target, replica bounds and the connection budget.",
        ]
    return "\n".join(lines) + "\n"


def interleaved(
    variants: list[Variant], urls: dict[str, tuple[str, int]], args: argparse.Namespace
) -> list[Measurement]:
    """Rounds of wrk over every variant in turn, each after a short warm-up."""
    target = f"{endpoints.API_PREFIX}/tasks/{ROWS // 2}"
    measurements = []
    for round_number in range(1, args.rounds + 1):
        for variant in variants:
            base = urls[variant.key][0]
            wrk(f"{base}{target}", 2, args.connections, args.threads)
            rps, p50, p99, errors = parse_wrk(wrk(f"{base}{target}", args.seconds, args.connections, args.threads))
            measurements.append(Measurement(variant.key, round_number, rps, p50, p99, errors))
            print(f"round {round_number} ({variant.key}): {rps:.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    return measurements


def compare_worker_models(database_url: str, sink_url: str, workdir: Path, args: argparse.Namespace) -> int:
    """`--worker-models`: the instrumented service on its gevent workers vs sync and threaded ones (ADR 0005)."""
    instrumented = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "LOG_LEVEL": "INFO"}
    variants = [
        Variant(
            "gevent",
            "2 gevent workers (app/worker.py, the default)",
            "app:create_app()",
            {**instrumented, "DB_POOL_MAX": "1"},
            ("-w", "2"),
        ),
        Variant(
            "sync",
            "2 sync workers",
            "app:create_app()",
            {**instrumented, "DB_POOL_MAX": "1"},
            ("-w", "2", "-k", "sync"),
        ),
        Variant(
            "gthread-1x8",
            "1 gthread worker x 8 threads",
            "app:create_app()",
            {**instrumented, "DB_POOL_MAX": "8"},
            ("-w", "1", "-k", "gthread", "--threads", "8"),
        ),
        Variant(
            "gthread-2x4",
            "2 gthread workers x 4 threads",
            "app:create_app()",
            {**instrumented, "DB_POOL_MAX": "4"},
            ("-w", "2", "-k", "gthread", "--threads", "4"),
        ),
    ]
    with servers(variants, database_url, workdir) as urls:
        measurements = interleaved(variants, urls, args)
    lines = ["| worker model | req/s | p50 ms | p99 ms (median) | p99 ms (worst round) |", "|---|---:|---:|---:|---:|"]
    for variant in variants:
        rows = [m for m in measurements if m.variant == variant.key]
        lines.append(
            f"| {variant.label} | {statistics.median(m.requests_per_second for m in rows):.0f} | "
            f"{statistics.median(m.p50_ms for m in rows):.1f} | {statistics.median(m.p99_ms for m in rows):.1f} | "
            f"{max(m.p99_ms for m in rows):.1f} |"
        )
    report = "# Worker models, instrumented service, GET /api/v1/tasks/<id>\n\n" + "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "worker-models.md").write_text(report)
    print("\n" + report)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument(
        "--worker-models", action="store_true", help="compare the gevent workers with sync and threaded ones instead"
    )
    args = parser.parse_args(argv)

    sink = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    variants = [
        Variant("a", "bare WSGI + psycopg2 baseline", "loadtest.baseline:application", {}),
        Variant(
            "b",
            "service, fully instrumented (OTLP traces, metrics, JSON logs)",
            "app:create_app()",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "OTEL_SERVICE_NAME": "taskboard-bench", "LOG_LEVEL": "INFO"},
        ),
        Variant(
            "d",
            "service, instrumented, 10 % of traces sampled at the source",
            "app:create_app()",
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
                "OTEL_SERVICE_NAME": "taskboard-bench",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1",
                "LOG_LEVEL": "INFO",
            },
        ),
        Variant(
            "c",
            "service, instrumentation off",
            "app:create_app()",
            {"METRICS_ENABLED": "false", "LOG_LEVEL": "WARNING"},
        ),
    ]
    settings = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "connections": args.connections,
        "threads": args.threads,
        "workers": int(os.environ.get("GUNICORN_WORKERS", "2")),
    }
    with tempfile.TemporaryDirectory(prefix="taskboard-bench-") as tmp:
        workdir = Path(tmp)
        pg = EmbeddedPostgres(workdir / "pg", free_port())
        pg.start()
        try:
            url = pg.ensure_database("bench")
            upgrade(url)
            seed(url)
            if args.worker_models:
                return compare_worker_models(url, sink_url, workdir, args)
            with servers(variants, url, workdir) as urls:
                measurements = interleaved(variants, urls, args)
                instrumented_url, instrumented_pid = urls["b"]
                mix = capacity.measure(instrumented_url, instrumented_pid, settings["workers"], args.out / "capacity")
            costs = cost.measure(url, ROWS // 2, workdir)
        finally:
            pg.remove()
            sink.shutdown()

    summary = summarise(measurements, variants)
    summary["cost_us_per_request"] = costs
    summary["capacity"] = {
        **asdict(mix),
        "cpu_ms_per_request": round(mix.cpu_ms_per_request, 3),
        "requests_per_second_per_worker": {f"{u:.0%}": round(mix.per_worker(u), 1) for u in capacity.UTILISATIONS},
    }
    summary["settings"] = settings
    summary["runs"] = [asdict(m) for m in measurements]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(summary, indent=2))
    report = markdown(summary, settings)
    (args.out / "bench.md").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
