"""The trace pipeline: a Jaeger v2 configuration (an OpenTelemetry Collector with Jaeger's extensions).

OTLP in (gRPC 4317, HTTP 4318) → memory limiter → tail sampling → batch → Jaeger storage (Amazon
OpenSearch, SigV4-signed with the pod's IRSA role). Tail sampling keeps every trace with an error span,
every trace slower than the latency SLO's threshold (read from the SLO file, so "slow" means the same
thing to the sampler as to the SLO), and a share of the rest.

Tail sampling needs every span of a trace in one process: run Jaeger as one replica, or put a
load-balancing exporter tier (routing by trace id) in front of several.

Environment (the collector's ``${env:NAME}``): ``OPENSEARCH_HOST`` and ``AWS_REGION``, set by infra/.
"""

from __future__ import annotations

from typing import Any

from observability.paths import SLO_FILE
from observability.slo import spec as slo_spec
from observability.slo.spec import LatencySLI

BASELINE_SAMPLING_PERCENT = 10  # of the traces that are neither failed nor slow
DECISION_WAIT = "10s"  # how long to wait for a trace's spans before deciding
STORAGE = "opensearch"
SPANS_INDEX_PREFIX = "jaeger"


def slow_trace_threshold_ms() -> int:
    """The latency SLO's threshold in milliseconds."""
    spec = slo_spec.load(SLO_FILE)
    thresholds = [slo.sli.threshold_seconds for slo in spec.slos if isinstance(slo.sli, LatencySLI)]
    if len(thresholds) != 1:
        raise ValueError(f"expected one latency SLO in {spec.path.name}, found {len(thresholds)}")
    return round(thresholds[0] * 1000)


def _daily(shards: int) -> dict[str, Any]:
    return {"date_layout": "2006-01-02", "rollover_frequency": "day", "shards": shards, "replicas": 1}


def collector_config() -> dict[str, Any]:
    """The content of observability/otel/collector.yaml."""
    return {
        "service": {
            "extensions": ["sigv4auth", "jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "tail_sampling", "batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "detailed",
                    # In a pod, listening on every interface is how Prometheus reaches the port.
                    "readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 8888}}}}],  # noqa: S104
                },
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": "0.0.0.0:13133"}},
            "sigv4auth": {"region": "${env:AWS_REGION}", "service": "es"},
            "jaeger_query": {"storage": {"traces": STORAGE}},
            "jaeger_storage": {
                "backends": {
                    STORAGE: {
                        "opensearch": {
                            "server_urls": ["https://${env:OPENSEARCH_HOST}"],
                            "auth": {"authenticator": "sigv4auth"},
                            "indices": {
                                "index_prefix": SPANS_INDEX_PREFIX,
                                "spans": _daily(2),
                                "services": _daily(1),
                                "dependencies": _daily(1),
                            },
                        }
                    }
                }
            },
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": "0.0.0.0:4317"},
                    "http": {"endpoint": "0.0.0.0:4318"},
                }
            }
        },
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
            "tail_sampling": {
                "decision_wait": DECISION_WAIT,
                "num_traces": 50000,
                "expected_new_traces_per_sec": 100,
                "policies": [
                    {"name": "every-error", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
                    {
                        "name": "every-slow-trace",
                        "type": "latency",
                        "latency": {"threshold_ms": slow_trace_threshold_ms()},
                    },
                    {
                        "name": "baseline",
                        "type": "probabilistic",
                        "probabilistic": {"sampling_percentage": BASELINE_SAMPLING_PERCENT},
                    },
                ],
            },
            "batch": {"send_batch_size": 1024, "timeout": "5s"},
        },
        "exporters": {"jaeger_storage_exporter": {"trace_storage": STORAGE}},
    }


def header() -> str:
    return (
        "# Jaeger v2 (jaegertracing/jaeger chart 4.x, `userconfig`): OTLP in, tail sampling that keeps every\n"
        "# error and every trace slower than the latency SLO threshold plus a share of the rest, stored in\n"
        "# Amazon OpenSearch with SigV4 (IRSA). Needs OPENSEARCH_HOST and AWS_REGION in the environment.\n"
        "# Tail sampling needs all spans of a trace in one process: one replica, or a load-balancing tier.\n"
    )
