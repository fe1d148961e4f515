"""Traces as code: the Jaeger v2 / OpenTelemetry Collector configuration is wired consistently, samples
with the SLO's notion of slow, and its policies hold for the spans the real service exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from app import endpoints
from observability import traces
from observability.paths import SLO_FILE
from observability.slo import spec as slo_spec
from observability.slo.spec import LatencySLI
from tests.observability.live import Live
from tests.observability.otlp_sink import OTLPSink

COLLECTOR = Path(traces.__file__).resolve().parent / "otel" / "collector.yaml"


def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COLLECTOR.read_text())
    return data


def policies() -> dict[str, dict[str, Any]]:
    return {p["type"]: p for p in config()["processors"]["tail_sampling"]["policies"]}


def slo_threshold_ms() -> float:
    spec = slo_spec.load(SLO_FILE)
    (threshold,) = [s.sli.threshold_seconds for s in spec.slos if isinstance(s.sli, LatencySLI)]
    return threshold * 1000


def test_every_component_a_pipeline_names_is_defined() -> None:
    data = config()
    for pipeline in data["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for name in pipeline[kind]:
                assert name in data[kind], f"{kind}: {name}"
    assert set(data["service"]["extensions"]) == set(data["extensions"])
    storage = data["extensions"]["jaeger_storage"]["backends"]
    assert data["extensions"]["jaeger_query"]["storage"]["traces"] in storage
    assert data["exporters"]["jaeger_storage_exporter"]["trace_storage"] in storage
    for backend in storage.values():
        assert backend["opensearch"]["auth"]["authenticator"] in data["service"]["extensions"]


def test_pipeline_order_limits_memory_first_and_batches_last() -> None:
    (pipeline,) = config()["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"] == ["memory_limiter", "tail_sampling", "batch"]


def test_tail_sampling_keeps_errors_slow_traces_and_a_share_of_the_rest() -> None:
    found = policies()
    assert found["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert found["latency"]["latency"]["threshold_ms"] == slo_threshold_ms()
    assert 0 < found["probabilistic"]["probabilistic"]["sampling_percentage"] < 100


def test_opensearch_endpoint_and_region_come_from_the_environment() -> None:
    text = COLLECTOR.read_text()
    assert "${env:OPENSEARCH_HOST}" in text and "${env:AWS_REGION}" in text
    assert config()["extensions"]["sigv4auth"]["service"] == "es"


def _server_spans(sink: OTLPSink) -> list[Span]:
    return [s for s in sink.snapshot() if s.kind == Span.SPAN_KIND_SERVER]


def _attribute(span: Span, *keys: str) -> str | int | None:
    for attribute in span.attributes:
        if attribute.key in keys:
            value = attribute.value
            found: str | int = value.int_value if value.HasField("int_value") else value.string_value
            return found
    return None


def test_the_service_marks_5xx_spans_as_errors_for_the_sampler(live: Live, otlp_sink: OTLPSink) -> None:
    spans = _server_spans(otlp_sink)
    assert spans, "the service exported no server spans to the sink"
    by_status: dict[int, list[Span]] = {}
    for span in spans:
        status = _attribute(span, "http.response.status_code", "http.status_code")
        if isinstance(status, int):
            by_status.setdefault(status, []).append(span)
    assert by_status.get(500) and by_status.get(200)
    assert all(s.status.code == Status.STATUS_CODE_ERROR for s in by_status[500])
    assert all(s.status.code != Status.STATUS_CODE_ERROR for s in by_status[200])


def test_slow_requests_exceed_the_latency_policy_and_ordinary_ones_do_not(live: Live, otlp_sink: OTLPSink) -> None:
    threshold_ns = policies()["latency"]["latency"]["threshold_ms"] * 1_000_000
    spans = _server_spans(otlp_sink)
    slow = [s for s in spans if s.name.endswith(f"{endpoints.API_PREFIX}/stats")]
    durations = sorted(s.end_time_unix_nano - s.start_time_unix_nano for s in slow)
    assert len([d for d in durations if d > threshold_ns]) >= live.traffic.user_slow
    assert durations[0] < threshold_ns, "stats requests without the latency fault are fast"


def test_log_lines_carry_the_trace_ids_of_exported_spans(live: Live, otlp_sink: OTLPSink) -> None:
    exported = {span.trace_id.hex() for span in otlp_sink.snapshot()}
    logged = set()
    for line in live.app_log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("status") == 500 and "trace_id" in record:
            logged.add(record["trace_id"])
    assert logged, "5xx access lines carry a trace_id"
    assert logged <= exported, "every logged trace id belongs to an exported trace"
