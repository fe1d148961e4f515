"""PromQL over the service's requests, shared by the dashboards: user traffic is what the SLOs count."""

from __future__ import annotations

from app import metric_names as names
from dashboards.builder import sel
from observability import promql
from observability.paths import SLO_FILE
from observability.slo import spec as slo_spec
from observability.slo.spec import LatencySLI, ServiceSLOs

RATE = "$__rate_interval"


def slos() -> ServiceSLOs:
    return slo_spec.load(SLO_FILE)


def user_routes() -> str:
    """The SLOs' route selection: probes, /metrics, the drill endpoint and unmatched paths left out."""
    return f"{names.ROUTE}!~{promql.quote(promql.any_of(slos().excluded_routes))}"


def latency_threshold() -> float:
    return next(slo.sli.threshold_seconds for slo in slos().slos if isinstance(slo.sli, LatencySLI))


def requests(*extra: str) -> str:
    return sel(names.HTTP_REQUESTS.total, user_routes(), *extra)


def request_rate(by: str = "", *extra: str) -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group} (rate({requests(*extra)}[{RATE}]))"


def error_ratio(by: str = "", statuses: str = names.SERVER_ERROR_MATCHER) -> str:
    """Share of user requests answered with a status matching ``statuses``."""
    bad = request_rate(by, f'{names.STATUS}=~"{statuses}"')
    return f"{bad}\n/\n{request_rate(by)}"


def latency_quantile(quantile: float, by: str = "") -> str:
    group = ", ".join(part for part in (by, "le") if part)
    buckets = sel(names.HTTP_REQUEST_DURATION.bucket, user_routes())
    return f"histogram_quantile({quantile}, sum by ({group}) (rate({buckets}[{RATE}])))"


def share_faster_than_threshold() -> str:
    """The latency SLI over the rate window: share of user requests faster than the SLO threshold."""
    le = f"le=~{promql.quote(promql.le_pattern(latency_threshold()))}"
    fast = f"sum(rate({sel(names.HTTP_REQUEST_DURATION.bucket, user_routes(), le)}[{RATE}]))"
    total = f"sum(rate({sel(names.HTTP_REQUEST_DURATION.count, user_routes())}[{RATE}]))"
    return f"{fast}\n/\n{total}"
