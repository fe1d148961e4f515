"""`make bench`'s parts: its measurements read real tool output, refuse empty results, and its peer is fair.

The whole benchmark takes minutes and its figures are reported, never asserted; these tests prove
the parts it is built from against the real tools (wrk, h2load, gunicorn, the peer's packages).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from app import endpoints
from loadtest import bench, bench_report, cost, openloop, profile
from loadtest.bench_report import Measurement, NotMeasured
from tests.conftest import execute


class _Answer(BaseHTTPRequestHandler):
    status = 200
    posts: list[str] = []  # noqa: RUF012 - shared on purpose: the test reads what the server got

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # wrk and h2load reset connections when they stop: not the test's concern


@pytest.fixture
def http_server() -> Iterator[Callable[[int], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        handler = type("Handler", (_Answer,), {"status": status, "posts": []})
        server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.slow  # wrk: Debian package wrk
def test_wrk_output_is_read_and_an_empty_one_refused(http_server: Callable[[int], str]) -> None:
    url = http_server(200)
    rps, p50, p99, errors = bench.parse_wrk(bench.wrk(f"{url}/", 1, 4, 1))
    assert rps > 10 and 0 < p50 <= p99 and errors == 0
    _, _, _, errors = bench.parse_wrk(bench.wrk(f"{http_server(500)}/", 1, 4, 1))
    assert errors > 0  # non-2xx answers are counted
    with pytest.raises(NotMeasured, match="wrk printed no throughput"):
        bench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.slow  # h2load: Debian package nghttp2-client
def test_open_loop_offers_the_rate_whatever_the_answers_and_refuses_no_answer(
    http_server: Callable[[int], str],
) -> None:
    run = openloop.measure(f"{http_server(200)}/", 200, 2)
    assert run.rate == 200
    assert run.answered + run.failed == 400
    assert run.answered >= 390, run
    assert 0 < run.p50_ms <= run.p99_ms
    with pytest.raises(openloop.OpenLoopError, match="no 2xx answer"):
        openloop.measure(f"{http_server(503)}/", 100, 1)


def test_h2load_log_parsing_and_nearest_rank_percentiles() -> None:
    log = "1000\t200\t1500\n1001\t200\t500\n1002\t503\t90\n1003\t-1\t0\n"
    durations, failed = openloop.parse_log(log, offered=5)
    assert durations == [500, 1500]
    assert failed == 3  # a 503, a request with no answer, one never logged
    values = list(range(1, 101))
    assert openloop.percentile(values, 0.50) == 50
    assert openloop.percentile(values, 0.99) == 99
    assert openloop.percentile([7], 0.99) == 7


def _round(key: str, rps: float, errors: int = 0, p99: float = 10.0) -> Measurement:
    return Measurement(key, 1, rps, 1.0, p99, errors)


def test_an_empty_or_failing_measurement_is_refused_by_name() -> None:
    keys = ["a", "b"]
    bench_report.require_measured([_round("a", 100), _round("b", 50)], keys)
    with pytest.raises(NotMeasured, match=r"\(b\) answered nothing"):
        bench_report.require_measured([_round("a", 100), _round("b", 0)], keys)
    with pytest.raises(NotMeasured, match=r"\(b\) answered 3 errors"):
        bench_report.require_measured([_round("a", 100), _round("b", 50, errors=3)], keys)
    with pytest.raises(NotMeasured, match=r"\(b\) was not measured"):
        bench_report.require_measured([_round("a", 100)], keys)
    with pytest.raises(NotMeasured, match="0 requests"):
        bench_report.require_capacity(0, 0.0, Path("locust.log"))
    bench_report.require_capacity(676, 1.33, Path("locust.log"))


def test_ratios_and_their_verdicts() -> None:
    closed = {
        key: {"requests_per_second": rps, "p50_ms": 1.0, "p99_ms": 2.0}
        for key, rps in {"a": 4000.0, "b": 2000.0, "c": 2400.0, "d": 2200.0, "p": 1000.0}.items()
    }
    opened = {"b": {"p99_ms": 9.0}, "c": {"p99_ms": 6.0}}
    measured = bench_report.ratios(closed, opened)
    assert measured == {"b/c": 0.833, "b/p": 2.0, "c/a": 0.6, "b/a": 0.5, "d/b": 1.1, "open_p99_b/c": 1.5}
    assert bench_report.met(measured) == {"b/c": True, "b/p": True, "c/a": False, "open_p99_b/c": True}
    assert not bench_report.met({**measured, "open_p99_b/c": 2.5})["open_p99_b/c"]


@pytest.mark.slow  # times the service in child processes (5 s)
def test_cost_layers_accumulate_and_the_full_row_costs_more_than_the_bare_one(
    migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    rows = cost.configurations()
    assert list(rows)[: len(cost.LAYERS)] == [name for name, _ in cost.LAYERS]
    assert rows[cost.FULL] == {"METRICS_ENABLED": "true", "LOG_LEVEL": "INFO", "TRACE": "export"}
    url = migrated_database()
    execute(url, "INSERT INTO tasks (title, status) VALUES ('cost', 'todo')")
    with ThreadingHTTPServer(("127.0.0.1", 0), _Answer) as sink:
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
        _Answer.posts.clear()
        bare = cost._run_child("bare service", rows["bare service"], url, 1, tmp_path, sink_url)
        full = cost._run_child(cost.FULL, rows[cost.FULL], url, 1, tmp_path, sink_url)
        sink.shutdown()
    assert 0 < bare < full
    assert "/v1/traces" in _Answer.posts  # the full row exported its spans
    with pytest.raises(cost.CostError, match="answered 404"):
        cost._run_child("bare service", rows["bare service"], url, 999, tmp_path, sink_url)


@pytest.mark.slow  # the peer under gunicorn (20 s)
def test_the_peer_carries_the_same_signals(migrated_database: Callable[[], str], tmp_path: Path) -> None:
    """(p) is a fair peer: a span per request and query exported over OTLP/HTTP, RED metrics by route,
    one JSON access line with the trace id — from its own packages, not the service's."""
    url = migrated_database()
    execute(url, "INSERT INTO tasks (title, status) VALUES ('peer', 'todo')")
    with ThreadingHTTPServer(("127.0.0.1", 0), _Answer) as sink:
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        _Answer.posts.clear()
        peer = bench.peer_variant(f"http://127.0.0.1:{sink.server_address[1]}")
        with bench.servers([peer], url, tmp_path, tmp_path / "logs") as urls:
            base = urls["p"][0]
            assert requests.get(f"{base}{endpoints.API_PREFIX}/tasks/1", timeout=5).status_code == 200
            metrics = requests.get(f"{base}{endpoints.METRICS}", timeout=5).text
        sink.shutdown()  # the workers flushed their spans on the way out
    assert (
        'flask_http_request_duration_seconds_bucket{le="0.005",method="GET",status="200",'
        f'url_rule="{endpoints.API_PREFIX}/tasks/<id:task_id>"}}' in metrics
    )
    assert "/v1/traces" in _Answer.posts
    lines = [
        json.loads(line) for line in (tmp_path / "logs" / "p.log").read_text().splitlines() if '"peer.access"' in line
    ]
    task_lines = [line for line in lines if line["path"] == f"{endpoints.API_PREFIX}/tasks/1"]
    assert len(task_lines) >= 1, lines
    assert task_lines[0]["status"] == 200 and int(task_lines[0]["otelTraceID"], 16) != 0


def test_profile_samples_go_to_the_innermost_owner() -> None:
    flask_instr = "_before_request (/v/site-packages/opentelemetry/instrumentation/flask/__init__.py:460)"
    sdk = "start_span (/v/site-packages/opentelemetry/sdk/trace/__init__.py:1100)"
    view = "get_task (/repo/app/api.py:40)"
    server = "handle (/v/site-packages/gunicorn/workers/base_async.py:50)"
    raw = "\n".join(
        [
            f"{server};{flask_instr};{sdk} 3",  # a span being started: the SDK's
            f"{server};{flask_instr};{view} 5",  # the view under the instrumentation: the service's
            f"{server};{flask_instr};re.search (/usr/lib/python3.11/re/__init__.py:176) 2",  # stdlib passes through
            "<module> (/usr/lib/python3.11/runpy.py:1) 1",
            # psycopg2's C execute, called by the instrumentation's wrapper: the query, the service's
            f"{server};{view};traced_execution (/v/opentelemetry/instrumentation/dbapi/__init__.py:880) 4",
            f"{server};{view};traced_execution (/v/opentelemetry/instrumentation/dbapi/__init__.py:870);"
            "_populate_span (/v/opentelemetry/instrumentation/dbapi/__init__.py:700) 1",
        ]
    )
    total, owners = profile.attribute(raw)
    assert total == 16
    assert owners == {
        "OpenTelemetry SDK and API (spans, attributes, context)": 3,
        profile.SERVICE: 9,
        "psycopg2 instrumentation (dbapi)": 1,
        "Flask instrumentation (with its WSGI and semconv helpers)": 2,
        profile.OTHER: 1,
    }


@pytest.mark.slow  # gunicorn under wrk and py-spy
def test_profile_records_a_loaded_worker(migrated_database: Callable[[], str], tmp_path: Path) -> None:
    url = migrated_database()
    execute(url, "INSERT INTO tasks (title, status) VALUES ('profiled', 'todo')")
    quiet = bench.Variant("c", "uninstrumented", "app:create_app()", {"METRICS_ENABLED": "false"})
    with bench.servers([quiet], url, tmp_path, tmp_path / "logs") as urls:
        base, pid = urls["c"]
        load = ["wrk", "-t1", "-c4", "-d5s", f"{base}{endpoints.API_PREFIX}/tasks/1"]
        shares = profile.shares(profile.record(pid, load, seconds=3))
    assert sum(shares.values()) == pytest.approx(100, abs=0.5)
    assert shares[profile.SERVICE] > 10, shares
    assert shares["Flask instrumentation (with its WSGI and semconv helpers)"] == 0, shares
