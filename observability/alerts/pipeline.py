"""Alerts on the telemetry pipeline itself: Fluent Bit shipping logs, and the alerting heartbeat."""

from __future__ import annotations

from observability import cluster, promql
from observability.cluster_metrics import metric
from observability.rules import Alert, Group, RuleFile

FLUENT_BIT_ERRORS_FOR = "15m"
FLUENT_BIT_DROP_WINDOW = "10m"

FLUENT_BIT = "fluent-bit"


def fluent_bit_alerts() -> list[Alert]:
    namespace = {"namespace": cluster.load().logging_namespace}
    errors = promql.selector(metric(FLUENT_BIT, "fluentbit_output_errors_total"), namespace)
    failed = promql.selector(metric(FLUENT_BIT, "fluentbit_output_retries_failed_total"), namespace)
    return [
        Alert(
            name="FluentBitOutputErrors",
            expr=f"sum by (namespace, pod, name) (rate({errors}[5m])) > 0",
            for_=FLUENT_BIT_ERRORS_FOR,
            severity="ticket",
            summary="Fluent Bit {{ $labels.pod }} cannot deliver to output {{ $labels.name }}",
            description=(
                "Output {{ $labels.name }} of Fluent Bit pod {{ $labels.pod }} has failed flushes "
                f'({{{{ $value | printf "%.2f" }}}} per second) continuously for {FLUENT_BIT_ERRORS_FOR}. Chunks are '
                "retried from the filesystem buffer; once it fills, the oldest logs are dropped."
            ),
        ),
        Alert(
            name="FluentBitOutputRetriesFailed",
            expr=f"sum by (namespace, pod, name) (increase({failed}[{FLUENT_BIT_DROP_WINDOW}])) > 0",
            severity="ticket",
            summary="Fluent Bit {{ $labels.pod }} dropped logs bound for {{ $labels.name }}",
            description=(
                'Fluent Bit pod {{ $labels.pod }} gave up on {{ $value | printf "%.0f" }} chunks for output '
                f"{{{{ $labels.name }}}} in the last {FLUENT_BIT_DROP_WINDOW} after exhausting their retries: "
                "those log lines are lost."
            ),
        ),
    ]


def watchdog() -> Alert:
    return Alert(
        name="Watchdog",
        expr="vector(1)",
        severity="none",
        summary="Always firing: proves the path Prometheus → Alertmanager works",
        description=(
            "This alert always fires. Alertmanager routes it to a receiver of its own; when it stops arriving, "
            "rule evaluation or notification delivery is broken and no other alert would arrive either."
        ),
    )


def rule_file() -> RuleFile:
    return RuleFile(
        filename="telemetry-pipeline.yml",
        about="Alerts on the telemetry pipeline: Fluent Bit log delivery, and the always-firing Watchdog.",
        groups=[Group("fluent-bit", fluent_bit_alerts()), Group("heartbeat", [watchdog()])],
    )
