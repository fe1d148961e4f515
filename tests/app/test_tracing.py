"""Traces: spans named by route, DB spans as children, W3C traceparent honoured, OTLP over the wire."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
import requests
from flask import Flask
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app import endpoints, tracing
from local.stack import Stack
from tests.conftest import ROOT, app_config, free_port

API = endpoints.API_PREFIX
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans(make_app: Callable[..., Flask]) -> Iterator[InMemorySpanExporter]:
    # The SDK provider is process-wide and can be set once: install it with the in-memory exporter.
    assert tracing.install_provider(_EXPORTER), "another provider was installed first"
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def test_request_span_named_by_route_with_db_children_and_incoming_parent(
    spans: InMemorySpanExporter, make_app: Callable[..., Flask]
) -> None:
    client = make_app().test_client()
    task = client.post(f"{API}/tasks", json={"title": "traced"}).get_json()
    spans.clear()

    response = client.get(f"{API}/tasks/{task['id']}", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 200

    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER]
    assert len(server) == 1
    request_span = server[0]
    assert request_span.name == "GET /api/v1/tasks/<id:task_id>"  # the route, never the raw path
    assert format(request_span.context.trace_id, "032x") == TRACE_ID
    assert request_span.parent is not None and format(request_span.parent.span_id, "016x") == PARENT_ID

    db_spans = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert db_spans, [s.name for s in finished]
    for span in db_spans:
        assert span.context.trace_id == request_span.context.trace_id
        assert span.parent is not None and span.parent.span_id == request_span.context.span_id
        assert span.attributes is not None and span.attributes.get("db.system") == "postgresql"


def test_health_and_metrics_are_not_traced(spans: InMemorySpanExporter, make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    for path in endpoints.OPERATIONAL_PATHS:
        assert client.get(path).status_code == 200, path
    assert client.get(f"{API}/stats").status_code == 200  # traced: tracing is on in this test
    server = [s.name for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server == [f"GET {API}/stats"]


def test_log_lines_carry_the_active_trace(
    spans: InMemorySpanExporter, make_app: Callable[..., Flask], capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app().test_client()
    capsys.readouterr()
    client.get(f"{API}/stats", headers={"traceparent": TRACEPARENT})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "taskboard.access"]
    assert len(access) == 1
    server = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert access[0]["trace_id"] == TRACE_ID
    assert access[0]["span_id"] == format(server.context.span_id, "016x")


def test_tracing_is_off_without_an_endpoint(database_url: str) -> None:
    # A fresh interpreter: the provider in this one is already installed by the tests above.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    script = (
        "import json, sys; from app import create_app, tracing; "
        "from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor; "
        "app = create_app(json.loads(sys.argv[1])); "
        "assert not tracing.installed(); "
        "assert not Psycopg2Instrumentor().is_instrumented_by_opentelemetry; "
        "assert not getattr(app, '_is_instrumented_by_opentelemetry', False); print('off')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(app_config(database_url))],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("off")


class _Receiver(BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP trace receiver: keeps each decoded export request."""

    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_reach_an_otlp_http_receiver_over_the_wire(served_app: Callable[..., Stack]) -> None:
    _Receiver.received = []
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stack = served_app(
            workers=1,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="100",
            OTEL_SERVICE_NAME="taskboard-wire-test",
            OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=uat,k8s.namespace.name=taskboard",
        )
        response = requests.post(
            f"{stack.settings.app_url}{API}/tasks",
            json={"title": "over the wire"},
            headers={"traceparent": TRACEPARENT},
            timeout=5,
        )
        assert response.status_code == 201
        deadline = time.monotonic() + 15
        spans: list[Any] = []
        while time.monotonic() < deadline:
            spans = [
                (resource, span)
                for request in list(_Receiver.received)
                for resource in request.resource_spans
                for scope in resource.scope_spans
                for span in scope.spans
            ]
            if any(span.trace_id.hex() == TRACE_ID and span.kind == 2 for _, span in spans) and len(spans) >= 2:
                break
            time.sleep(0.2)
        ours = [(resource, span) for resource, span in spans if span.trace_id.hex() == TRACE_ID]
        assert ours, f"no span with the incoming trace id arrived ({len(spans)} spans)"
        server_spans = [span for _, span in ours if span.kind == 2]  # SPAN_KIND_SERVER
        client_spans = [span for _, span in ours if span.kind == 3]  # SPAN_KIND_CLIENT
        assert len(server_spans) == 1 and client_spans
        assert server_spans[0].parent_span_id.hex() == PARENT_ID
        assert all(span.parent_span_id == server_spans[0].span_id for span in client_spans)
        resource = ours[0][0].resource
        attributes = {a.key: a.value.string_value for a in resource.attributes}
        assert attributes["service.name"] == "taskboard-wire-test"
        # What the deployment says wins over the defaults (APP_ENV is "test" here).
        assert attributes["deployment.environment.name"] == "uat"
        assert attributes["k8s.namespace.name"] == "taskboard"
        assert attributes["service.version"] == "dev"
    finally:
        server.shutdown()
        server.server_close()
