"""`make bench`: the service against a bare baseline, itself uninstrumented and its peer, in one run.

Five servers under the same gunicorn config file and settings, on one PostgreSQL:
  (a) baseline      loadtest/baseline.py — bare WSGI + psycopg2, the same SELECT and JSON;
  (b) instrumented  the service: traces exported over OTLP/HTTP to a local sink, metrics, JSON logs;
  (c) bare service  the same service with tracing off, METRICS_ENABLED=false and LOG_LEVEL=WARNING;
  (d) sampled       (b) with 10 % of traces sampled at the source (OTEL_TRACES_SAMPLER), for reading (b);
  (p) peer          the service instrumented the usual way (loadtest/peer.py), what a user would pick.
wrk drives GET /api/v1/tasks/<id> on 127.0.0.1 (-t2 -c32 by default), rounds interleaved, and the
medians are compared as ratios; then h2load offers half of (c)'s maximum, open loop, to every variant
(loadtest/openloop.py); then the Locust user mix measures CPU per request (loadtest/capacity.py) and
loadtest/cost.py splits a request's CPU by instrumentation layer. Only ratios within one run mean
anything. Targets (loadtest/bench_report.py) are reported, never asserted.

Exit codes: 0 measured and reported (whether or not the targets are met); 2 a measurement came back
empty or a server did not start (the message names it) — nothing is reported then.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app import endpoints
from app.config import DEFAULT_WORKERS, ConfigError, env_int
from app.migrate import upgrade
from loadtest import bench_report, capacity, cost, openloop, profile
from loadtest.bench_report import Measurement, NotMeasured
from local.postgres import EmbeddedPostgres
from local.stack import StackError, free_port, wait_http
from observability.paths import ROOT

REPORTS = ROOT / "reports" / "bench"
PEER_VENV = ROOT / ".venv-peer"
PROFILE_SECONDS = 8
BENCH_SERVICE = f"{endpoints.SERVICE_NAME}-bench"  # the spans' service name, for (b), (d) and (p) alike
ROWS = 1000


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    app: str
    env: dict[str, str]
    gunicorn_args: tuple[str, ...] = ()  # after -c app/gunicorn.conf.py, so they override it
    python: str = sys.executable
    launcher: tuple[str, ...] = ()  # a command gunicorn runs under (the peer's opentelemetry-instrument)


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
    rps_match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50_match = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99_match = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps_match and p50_match and p99_match):
        raise NotMeasured(f"wrk printed no throughput or latency: {output[-300:]!r}")
    rps, p50, p99 = float(rps_match.group(1)), _duration_ms(p50_match.group(1)), _duration_ms(p99_match.group(1))
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(non_2xx.group(1))
    if sockets := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output):
        errors += sum(int(n) for n in sockets.groups())
    return rps, p50, p99, errors


def wrk(url: str, seconds: int, connections: int, threads: int) -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise NotMeasured("wrk not found (the Debian package wrk; make bench installs it)")
    result = subprocess.run(  # noqa: S603
        [binary, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise NotMeasured(f"wrk against {url} exited {result.returncode}: {result.stderr[-300:]}")
    return result.stdout


@contextmanager
def servers(
    variants: list[Variant], database_url: str, workdir: Path, log_dir: Path
) -> Iterator[dict[str, tuple[str, int]]]:
    """Start one gunicorn per variant, its output in ``log_dir``; yield their base URLs and master pids."""
    log_dir.mkdir(parents=True, exist_ok=True)
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
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{variant.key}"),
                **variant.env,
            }
            log = (log_dir / f"{variant.key}.log").open("wb")
            processes.append(
                subprocess.Popen(  # noqa: S603
                    [
                        *variant.launcher,
                        variant.python,
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
            _wait(f"{url}{endpoints.API_PREFIX}/tasks/1", key, log_dir / f"{key}.log")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def _wait(url: str, key: str, log: Path, timeout: float = 60) -> None:
    try:
        wait_http(url, timeout)
    except StackError:
        raise NotMeasured(f"server ({key}) did not answer {url} within {timeout:.0f} s: see {log}") from None


@contextmanager
def database() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL of the benchmark's own with the schema and ROWS tasks; yields its URL and a work folder."""
    with tempfile.TemporaryDirectory(prefix="taskboard-bench-") as tmp:
        workdir = Path(tmp)
        pg = EmbeddedPostgres(workdir / "pg", free_port())
        pg.start()
        try:
            url = pg.ensure_database("bench")
            upgrade(url)
            seed(url)
            yield url, workdir
        finally:
            pg.remove()


def seed(url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO tasks (title, status) SELECT 'bench task ' || n, 'todo' FROM generate_series(1, %s) AS n",
            (ROWS,),
        )
    conn.close()


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


def peer_variant(sink_url: str) -> Variant:
    """(p): loadtest/peer.py under opentelemetry-instrument, in .venv-peer, exporting to the same sink."""
    if not (PEER_VENV / "bin" / "opentelemetry-instrument").exists():
        raise NotMeasured(f"{PEER_VENV} is missing (make bench installs it)")
    return Variant(
        "p",
        "service, the usual instrumentation (opentelemetry-instrument, prometheus-flask-exporter, python-json-logger)",
        "loadtest.peer:create_app()",
        {
            **cost.UNINSTRUMENTED,
            "OTEL_SERVICE_NAME": BENCH_SERVICE,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
            # The distro's defaults but for the receiver: OTLP over HTTP (as (b)), and only traces
            # over OTLP, because metrics and logs are the other two packages' job here, as in (b).
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_PYTHON_LOG_CORRELATION": "true",
        },
        python=str(PEER_VENV / "bin" / "python"),
        launcher=(str(PEER_VENV / "bin" / "opentelemetry-instrument"),),
    )


def open_loop(
    variants: list[Variant], urls: dict[str, tuple[str, int]], rate: int, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Rounds of h2load at ``rate`` over every variant in turn; the median p50 and p99 of each."""
    target = f"{endpoints.API_PREFIX}/tasks/{ROWS // 2}"
    runs: dict[str, list[openloop.OpenLoop]] = {v.key: [] for v in variants}
    for round_number in range(1, args.open_rounds + 1):
        for variant in variants:
            run = openloop.measure(f"{urls[variant.key][0]}{target}", rate, args.open_seconds)
            runs[variant.key].append(run)
            print(f"open loop {round_number} ({variant.key}): {run.rate} req/s offered, p50 {run.p50_ms} ms, "
                  f"p99 {run.p99_ms} ms, {run.failed} failed")  # fmt: skip
    return {
        key: {
            "rate": rows[0].rate,
            "answered": sum(r.answered for r in rows),
            "failed": sum(r.failed for r in rows),
            "p50_ms": statistics.median(r.p50_ms for r in rows),
            "p99_ms": statistics.median(r.p99_ms for r in rows),
        }
        for key, rows in runs.items()
    }


def profiled(key: str, url: str, master_pid: int, args: argparse.Namespace) -> dict[str, float]:
    """py-spy's attribution of a variant's workers under wrk's load (loadtest/profile.py).

    The samples stay in reports/bench/profile-<key>.txt, collapsed stacks as flamegraph.pl reads them.
    """
    binary = shutil.which("wrk") or "wrk"
    target = f"{url}{endpoints.API_PREFIX}/tasks/{ROWS // 2}"
    load = [binary, f"-t{args.threads}", f"-c{args.connections}", f"-d{PROFILE_SECONDS + 3}s", target]
    raw = profile.record(master_pid, load, PROFILE_SECONDS)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile-{key}.txt").write_text(raw)
    return profile.shares(raw)


def variants_for(sink_url: str) -> list[Variant]:
    traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "OTEL_SERVICE_NAME": BENCH_SERVICE, "LOG_LEVEL": "INFO"}
    return [
        Variant("a", "bare WSGI + psycopg2 baseline", "loadtest.baseline:application", {}),
        Variant("b", "service, fully instrumented (OTLP traces, metrics, JSON logs)", "app:create_app()", traced),
        Variant(
            "d",
            "service, instrumented, 10 % of traces sampled at the source",
            "app:create_app()",
            {**traced, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        ),
        Variant(
            "c",
            "service, instrumentation off",
            "app:create_app()",
            cost.UNINSTRUMENTED,
        ),
        peer_variant(sink_url),
    ]


def run(args: argparse.Namespace, sink_url: str) -> dict[str, Any]:
    """Every measurement, on one PostgreSQL; raises NotMeasured when one comes back empty."""
    variants = variants_for(sink_url)
    keys = [v.key for v in variants]
    settings = {
        "seconds": args.seconds,
        "rounds": args.rounds,
        "connections": args.connections,
        "threads": args.threads,
        "open_seconds": args.open_seconds,
        "open_rounds": args.open_rounds,
        "workers": env_int(os.environ, "GUNICORN_WORKERS", DEFAULT_WORKERS, 1, 64),
    }
    with database() as (url, workdir):
        with servers(variants, url, workdir, args.out / "logs") as urls:
            measurements = interleaved(variants, urls, args)
            bench_report.require_measured(measurements, keys)
            closed = bench_report.medians(measurements, keys)
            rate = round(closed["c"]["requests_per_second"] / 2)
            opened = open_loop([v for v in variants if v.key in ("a", "b", "c", "p")], urls, rate, args)
            profiles = {key: profiled(key, *urls[key], args) for key in ("b", "c", "p")}
            instrumented_url, instrumented_pid = urls["b"]
            mix = capacity.measure(instrumented_url, instrumented_pid, settings["workers"], args.out / "capacity")
        bench_report.require_capacity(mix.requests, mix.cpu_seconds, args.out / "capacity" / "locust.log")
        costs = cost.measure(url, ROWS // 2, workdir, sink_url)
    measured = bench_report.ratios(closed, opened)
    return {
        "variants": {v.key: v.label for v in variants},
        "closed_loop": closed,
        "open_loop": opened,
        "ratios": measured,
        "targets": bench_report.TARGETS,
        "met": bench_report.met(measured),
        "cost_us_per_request": costs,
        "profile_shares": profiles,
        "capacity": {
            **asdict(mix),
            "cpu_ms_per_request": round(mix.cpu_ms_per_request, 3),
            "requests_per_second_per_worker": {f"{u:.0%}": round(mix.per_worker(u), 1) for u in capacity.UTILISATIONS},
        },
        "settings": settings,
        "runs": [asdict(m) for m in measurements],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each closed-loop (wrk) run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved closed-loop rounds")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--open-seconds", type=int, default=10, help="length of each open-loop (h2load) run")
    parser.add_argument("--open-rounds", type=int, default=2, help="interleaved open-loop rounds")
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument(
        "--worker-models", action="store_true", help="compare the gevent workers with sync and threaded ones instead"
    )
    args = parser.parse_args(argv)

    sink = ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    try:
        if args.worker_models:
            from loadtest import worker_models

            return worker_models.compare(sink_url, args)
        summary = run(args, sink_url)
    except (NotMeasured, ConfigError, openloop.OpenLoopError, cost.CostError, profile.ProfileError) as exc:
        print(f"make bench: could not measure: {exc}", file=sys.stderr)
        return 2
    finally:
        sink.shutdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(summary, indent=2))
    report = bench_report.markdown(summary)
    (args.out / "bench.md").write_text(report)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
