"""Alerts on the service's own metrics: scrape health, errors, latency, readiness, the database pool."""

from __future__ import annotations

from app import endpoints
from app import metric_names as names
from observability import labels, promql
from observability.cluster_metrics import metric
from observability.paths import SLO_FILE
from observability.rules import Alert, Group, RuleFile
from observability.slo import spec as slo_spec
from observability.slo_rules import route_matchers

# Thresholds: the one place each is written.
TARGET_DOWN_FOR = "5m"
NO_TARGET_UP_FOR = "3m"
ERROR_RATIO = 0.05  # share of user requests answered 5xx over 5 minutes
ERROR_RATIO_FOR = "2m"
P99_LATENCY_SECONDS = 1.0
P99_LATENCY_FOR = "10m"
READINESS_FAILING_RATIO = 0.5  # share of /readyz probes answered 503
READINESS_FAILING_FOR = "5m"
POOL_SATURATION_RATIO = 0.9
POOL_SATURATION_FOR = "10m"
QUERY_P99_SECONDS = 0.25
QUERY_P99_FOR = "10m"
DB_ERRORS_FOR = "5m"

_JOB = [(labels.JOB, "=", endpoints.SERVICE_NAME)]


def _sel(metric_name: str, matchers: list[tuple[str, str, str]]) -> str:
    return promql.selector(metric_name, matchers)


def _p99(bucket: str, matchers: list[tuple[str, str, str]], by: tuple[str, ...], threshold: float) -> str:
    summed = promql.sum_rate(bucket, matchers, "5m", (*by, "le"))
    return f"histogram_quantile(0.99,\n{promql.indent(summed)}\n) > {promql.number(threshold)}"


def _ratio(numerator: str, denominator: str, comparison: str) -> str:
    return f"(\n{promql.indent(numerator)}\n/\n{promql.indent(denominator)}\n)\n{comparison}"


def alerts() -> list[Alert]:
    spec = slo_spec.load(SLO_FILE)
    user = route_matchers(spec)  # the SLOs' selection of user traffic
    up = metric("prometheus", "up")
    requests = names.HTTP_REQUESTS.total
    five_xx = (names.STATUS, "=~", names.SERVER_ERROR_MATCHER)
    readyz = [*_JOB, (names.ROUTE, "=", endpoints.READYZ)]
    unready = [*readyz, (names.STATUS, "=", "503")]
    per_target = (labels.NAMESPACE, labels.POD, labels.INSTANCE)
    per_namespace = (labels.NAMESPACE,)
    return [
        Alert(
            name="TaskboardTargetDown",
            expr=f"{_sel(up, _JOB)} == 0",
            for_=TARGET_DOWN_FOR,
            severity="ticket",
            summary="Prometheus cannot scrape taskboard instance {{ $labels.instance }}",
            description=(
                "The scrape of {{ $labels.instance }} (namespace {{ $labels.namespace }}) has failed for "
                f"{TARGET_DOWN_FOR}: the pod is down, not listening, or /metrics is failing. Other replicas "
                "may still serve traffic."
            ),
        ),
        Alert(
            name="TaskboardNoTargetUp",
            # Every target of a namespace down, or no target discovered at all (then only job is known).
            expr=f"sum by ({labels.NAMESPACE}, {labels.JOB}) ({_sel(up, _JOB)}) == 0\nor\nabsent({_sel(up, _JOB)})",
            for_=NO_TARGET_UP_FOR,
            severity="page",
            summary="No taskboard instance is up (or Prometheus no longer finds any)",
            description=(
                f"For {NO_TARGET_UP_FOR} Prometheus has had no successful scrape of job "
                f'"{endpoints.SERVICE_NAME}" in namespace {{{{ $labels.namespace }}}} (empty: in any namespace): '
                "every instance is down, or the ServiceMonitor no longer matches. The SLO alerts are blind "
                "meanwhile (no traffic, no SLI)."
            ),
        ),
        Alert(
            name="TaskboardHighErrorRatio",
            expr=_ratio(
                promql.sum_rate(requests, [*user, five_xx], "5m", per_namespace),
                promql.sum_rate(requests, user, "5m", per_namespace),
                f"> {promql.number(ERROR_RATIO)}",
            ),
            for_=ERROR_RATIO_FOR,
            severity="page",
            summary="{{ $value | humanizePercentage }} of taskboard requests fail with 5xx",
            description=(
                "{{ $value | humanizePercentage }} of API and page requests in namespace {{ $labels.namespace }} "
                f"were answered with a server error over the last 5 minutes (threshold "
                f"{ERROR_RATIO:.0%}, for {ERROR_RATIO_FOR}). This fires before the error-budget alerts do."
            ),
        ),
        Alert(
            name="TaskboardLatencyP99High",
            expr=_p99(names.HTTP_REQUEST_DURATION.bucket, user, per_namespace, P99_LATENCY_SECONDS),
            for_=P99_LATENCY_FOR,
            severity="ticket",
            summary="taskboard p99 latency is {{ $value | humanizeDuration }}",
            description=(
                "The 99th percentile of API and page request durations in namespace {{ $labels.namespace }} "
                f"has been above {P99_LATENCY_SECONDS:g} s for {P99_LATENCY_FOR} "
                "(now {{ $value | humanizeDuration }})."
            ),
        ),
        Alert(
            name="TaskboardReadinessFailing",
            expr=_ratio(
                promql.sum_rate(requests, unready, "5m", per_target),
                promql.sum_rate(requests, readyz, "5m", per_target),
                f"> {promql.number(READINESS_FAILING_RATIO)}",
            ),
            for_=READINESS_FAILING_FOR,
            severity="ticket",
            summary="taskboard instance {{ $labels.instance }} answers its readiness probe with 503",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of {endpoints.READYZ} probes of {{{{ $labels.instance }}}} "
                f"returned 503 over the last 5 minutes, for {READINESS_FAILING_FOR}: the pod cannot reach "
                "PostgreSQL within the readiness timeout (or is shutting down) and receives no traffic."
            ),
        ),
        Alert(
            name="TaskboardDatabasePoolSaturated",
            expr=_ratio(
                f"sum by ({', '.join(per_target)}) "
                f"(avg_over_time({_sel(names.DB_POOL_CONNECTIONS_IN_USE.name, _JOB)}[5m]))",
                f"sum by ({', '.join(per_target)}) "
                f"(max_over_time({_sel(names.DB_POOL_CONNECTIONS_MAX.name, _JOB)}[5m]))",
                f">= {promql.number(POOL_SATURATION_RATIO)}",
            ),
            for_=POOL_SATURATION_FOR,
            severity="ticket",
            summary="taskboard {{ $labels.instance }} uses {{ $value | humanizePercentage }} of its connection pool",
            # A sync gunicorn worker holds one connection (DB_POOL_MAX=1): the pool's share in use is the
            # share of workers busy in the database. Near 100 % the pod has no idle worker left.
            description=(
                "On average {{ $value | humanizePercentage }} of the database connections {{ $labels.instance }} "
                f"may open were checked out over 5 minutes (threshold {POOL_SATURATION_RATIO:.0%}, for "
                f"{POOL_SATURATION_FOR}). With one connection per sync worker, nearly every worker is busy "
                "in the database: requests queue for a worker; latency follows."
            ),
        ),
        Alert(
            name="TaskboardDatabaseQueryLatencyHigh",
            expr=_p99(names.DB_QUERY_DURATION.bucket, _JOB, (*per_namespace, names.OPERATION), QUERY_P99_SECONDS),
            for_=QUERY_P99_FOR,
            severity="ticket",
            summary="taskboard query {{ $labels.operation }} p99 is {{ $value | humanizeDuration }}",
            description=(
                "The 99th percentile of database operation {{ $labels.operation }} in namespace "
                f"{{{{ $labels.namespace }}}} has been above {QUERY_P99_SECONDS * 1000:g} ms for {QUERY_P99_FOR}."
            ),
        ),
        Alert(
            name="TaskboardDatabaseErrors",
            expr=f"{promql.sum_rate(names.DB_ERRORS.total, _JOB, '5m', (*per_namespace, names.OPERATION))} > 0",
            for_=DB_ERRORS_FOR,
            severity="ticket",
            summary="taskboard cannot reach PostgreSQL for {{ $labels.operation }}",
            description=(
                "Database operation {{ $labels.operation }} in namespace {{ $labels.namespace }} has failed "
                f"because PostgreSQL was unreachable or timed out, continuously for {DB_ERRORS_FOR} "
                '({{ $value | printf "%.2f" }} errors per second). Requests answer 503.'
            ),
        ),
    ]


def rule_file() -> RuleFile:
    return RuleFile(
        filename=f"{endpoints.SERVICE_NAME}-service.yml",
        about="Alerts on the task board's own metrics: scrape health, errors, latency, readiness, database.",
        groups=[Group(f"{endpoints.SERVICE_NAME}-service", alerts())],
    )
