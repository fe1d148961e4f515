"""Grafana data sources as code: fixed UIDs (the one place they are written) and the provisioning file.

Dashboards import the UIDs from here; ``make generate`` writes observability/grafana/datasources.yaml,
which Grafana's sidecar (label from infra/cluster.yaml) or file provisioning loads. The links between
data sources close the loop metrics → traces → logs: a Prometheus exemplar's ``trace_id`` opens the
trace in Jaeger, a Jaeger trace opens its log lines in OpenSearch, a log line's ``trace_id`` opens
the trace again.

Environment variables (Grafana expands ``${NAME}`` in provisioning files; ``$$`` is a literal ``$``):
``OPENSEARCH_HOST`` (domain endpoint, no scheme) and ``AWS_REGION``, set on the Grafana pod by infra/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import metric_names as names
from observability import cluster, fluentbit

# The exemplar label app/metrics.py attaches to latency observations, and the log field app/logs.py
# writes: the same W3C trace id, 32 hex digits.
TRACE_ID = names.TRACE_ID
# Jaeger v2's query port (chart jaegertracing/jaeger 4.x; the Service is infra/cluster.yaml tracing.service).
JAEGER_QUERY_PORT = 16686
# kube-prometheus-stack's default scrape interval; Grafana derives $__rate_interval from it.
SCRAPE_INTERVAL = "30s"


@dataclass(frozen=True)
class Datasource:
    uid: str
    type: str
    name: str

    def ref(self) -> dict[str, str]:
        """The ``{"type", "uid"}`` reference a panel or target carries."""
        return {"type": self.type, "uid": self.uid}


PROMETHEUS = Datasource("prometheus", "prometheus", "Prometheus")
JAEGER = Datasource("jaeger", "jaeger", "Jaeger")
OPENSEARCH = Datasource("opensearch", "grafana-opensearch-datasource", "OpenSearch")
CLOUDWATCH = Datasource("cloudwatch", "cloudwatch", "CloudWatch")
ALL = (PROMETHEUS, JAEGER, OPENSEARCH, CLOUDWATCH)


def _literal(template: str) -> str:
    """A Grafana template (``${__value.raw}``) escaped so provisioning does not expand it as an env var."""
    return template.replace("$", "$$")


def provisioning() -> dict[str, Any]:
    """The content of observability/grafana/datasources.yaml."""
    c = cluster.load()
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": PROMETHEUS.name,
                "uid": PROMETHEUS.uid,
                "type": PROMETHEUS.type,
                "access": "proxy",
                "url": c.prometheus_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "httpMethod": "POST",
                    "timeInterval": SCRAPE_INTERVAL,
                    "exemplarTraceIdDestinations": [{"name": TRACE_ID, "datasourceUid": JAEGER.uid}],
                },
            },
            {
                "name": JAEGER.name,
                "uid": JAEGER.uid,
                "type": JAEGER.type,
                "access": "proxy",
                "url": f"http://{c.tracing_service}.{c.tracing_namespace}.svc:{JAEGER_QUERY_PORT}",
                "editable": False,
                "jsonData": {
                    "tracesToLogsV2": {
                        "datasourceUid": OPENSEARCH.uid,
                        "spanStartTimeShift": "-5m",
                        "spanEndTimeShift": "5m",
                        "filterByTraceID": False,
                        "filterBySpanID": False,
                        "customQuery": True,
                        "query": _literal(f'{TRACE_ID}:"${{__trace.traceId}}"'),
                    },
                    "nodeGraph": {"enabled": True},
                },
            },
            {
                "name": OPENSEARCH.name,
                "uid": OPENSEARCH.uid,
                "type": OPENSEARCH.type,
                "access": "proxy",
                "url": "https://${OPENSEARCH_HOST}",
                "editable": False,
                "jsonData": {
                    "database": fluentbit.log_index_pattern(),
                    "timeField": "@timestamp",
                    "flavor": "opensearch",
                    "version": "2.19.0",
                    "logMessageField": "message",
                    "logLevelField": "level",
                    "pplEnabled": True,
                    "sigV4Auth": True,
                    "sigV4AuthType": "default",
                    "sigV4Region": "${AWS_REGION}",
                    "dataLinks": [
                        {"field": TRACE_ID, "datasourceUid": JAEGER.uid, "url": _literal("${__value.raw}")},
                    ],
                },
            },
            {
                "name": CLOUDWATCH.name,
                "uid": CLOUDWATCH.uid,
                "type": CLOUDWATCH.type,
                "access": "proxy",
                "editable": False,
                "jsonData": {"authType": "default", "defaultRegion": "${AWS_REGION}"},
            },
        ],
    }


def header() -> str:
    return (
        "# Grafana data sources with fixed UIDs (dashboards reference them by UID). Needs the plugin\n"
        "# grafana-opensearch-datasource, and the environment variables OPENSEARCH_HOST and AWS_REGION on\n"
        "# the Grafana pod (its IRSA role signs OpenSearch and CloudWatch requests). $$ is a literal $.\n"
    )
