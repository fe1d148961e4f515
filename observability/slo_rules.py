"""SLOs → Sloth-style recording rules, multi-window multi-burn-rate alerts, and the alerts' runbooks.

Recorded series (names as Sloth writes them, labelled ``sloth_id``, ``sloth_service``, ``sloth_slo``):

- ``slo:sli_error:ratio_rate<window>``: the share of bad requests over each window, per namespace;
  the period's (30d) is the average of the base window's, as Sloth does, so no rule reads 30 days of
  raw samples;
- ``slo:objective:ratio``, ``slo:error_budget:ratio``, ``slo:time_period:days``: the targets;
- ``slo:current_burn_rate:ratio`` and ``slo:period_burn_rate:ratio``: error ratio ÷ budget;
- ``slo:period_error_budget_remaining:ratio``: 1 − period burn rate (1 = untouched, ≤ 0 = spent).

An SLI is never "no data" while the service has traffic: when no request was bad, the bad-request
rate is written as 0 rather than left absent.
"""

from __future__ import annotations

from app import metric_names as names
from observability import cluster, labels, promql
from observability.links import GENERATED_RUNBOOK_MARK
from observability.paths import ROOT
from observability.rules import Alert, Group, Recording, RuleFile
from observability.slo.spec import SLO, AvailabilitySLI, BurnRateAlert, LatencySLI, ServiceSLOs, camel

SLI_ERROR = "slo:sli_error:ratio_rate"
OBJECTIVE = "slo:objective:ratio"
ERROR_BUDGET = "slo:error_budget:ratio"
TIME_PERIOD_DAYS = "slo:time_period:days"
CURRENT_BURN_RATE = "slo:current_burn_rate:ratio"
PERIOD_BURN_RATE = "slo:period_burn_rate:ratio"
BUDGET_REMAINING = "slo:period_error_budget_remaining:ratio"

# SLIs are kept per namespace: one namespace is one deployment of the service (the local stack
# labels its target namespace="local"), and two deployments must never share an error budget.
SLI_BY = (labels.NAMESPACE,)

_SLO_LABELS = (labels.SLO_ID, labels.SLO_SERVICE, labels.SLO_NAME)


def sli_record(window: str) -> str:
    """The recorded error-ratio series for ``window``, e.g. ``slo:sli_error:ratio_rate5m``."""
    return f"{SLI_ERROR}{window}"


def slo_id(spec: ServiceSLOs, slo: SLO) -> str:
    return f"{spec.service}-{slo.name}"


def slo_labels(spec: ServiceSLOs, slo: SLO) -> dict[str, str]:
    return {labels.SLO_ID: slo_id(spec, slo), labels.SLO_SERVICE: spec.service, labels.SLO_NAME: slo.name}


def alert_name(spec: ServiceSLOs, slo: SLO, alert: BurnRateAlert) -> str:
    """``Taskboard`` + ``Availability`` + ``FastBurn``."""
    return f"{camel(spec.service)}{camel(slo.name)}{alert.name}"


def route_matchers(spec: ServiceSLOs) -> list[tuple[str, str, str]]:
    """The selection every SLI shares: the service's job, user-traffic routes only."""
    return [(labels.JOB, "=", spec.service), (names.ROUTE, "!~", promql.any_of(spec.excluded_routes))]


def _sum_rate(metric: str, matchers: list[tuple[str, str, str]], window: str) -> str:
    by = ", ".join(SLI_BY)
    rate = _indent(f"rate({promql.selector(metric, matchers, wrap=0)}[{window}])")
    return f"sum by ({by}) (\n{rate}\n)"


def sli_error_ratio(spec: ServiceSLOs, slo: SLO, window: str) -> str:
    """The raw error-ratio expression of ``slo`` over ``window`` (what the recording rules record)."""
    base = route_matchers(spec)
    sli = slo.sli
    if isinstance(sli, AvailabilitySLI):
        total = _sum_rate(sli.metric.total, base, window)
        bad = _sum_rate(sli.metric.total, [*base, (names.STATUS, "=~", sli.bad_status)], window)
        return f"(\n{_indent(bad)}\n  or\n  0 * {_indent(total).lstrip()}\n)\n/\n{total}"
    assert isinstance(sli, LatencySLI)
    le = ("le", "=~", promql.le_pattern(sli.threshold_seconds))
    fast = _sum_rate(sli.metric.bucket, [*base, le], window)
    total = _sum_rate(sli.metric.count, base, window)
    return f"1 - (\n{_indent(fast)}\n  /\n{_indent(total)}\n)"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _selector(spec: ServiceSLOs, slo: SLO) -> str:
    return f"{{{labels.SLO_ID}={promql.quote(slo_id(spec, slo))}}}"


def sli_group(spec: ServiceSLOs, slo: SLO) -> Group:
    """The SLI recordings, then the burn-rate alerts on them.

    One group, because rules in a group run in order: an alert then reads the SLIs of the same
    evaluation, never those of the one before (separate groups run independently of each other).
    """
    own = slo_labels(spec, slo)
    rules: list[Recording | Alert] = [
        Recording(sli_record(w), sli_error_ratio(spec, slo, w), {**own, labels.SLO_WINDOW: w})
        for w in spec.alert_windows
    ]
    base = f"{sli_record(spec.base_window)}{_selector(spec, slo)}"
    period_expr = f"sum_over_time({base}[{spec.period}])\n/\ncount_over_time({base}[{spec.period}])"
    rules.append(Recording(sli_record(spec.period), period_expr, {**own, labels.SLO_WINDOW: spec.period}))
    rules += [burn_alert(spec, slo, a) for a in spec.burn_rate_alerts]
    return Group(slo_id(spec, slo), rules)


def meta_group(spec: ServiceSLOs, slo: SLO) -> Group:
    own = slo_labels(spec, slo)
    sel = _selector(spec, slo)
    on = f"on ({', '.join(_SLO_LABELS)}) group_left"
    days = promql.seconds(spec.period) // 86400
    rules = [
        Recording(OBJECTIVE, f"vector({promql.number(slo.objective)})", own),
        Recording(ERROR_BUDGET, f"vector({promql.number(slo.error_budget)})", own),
        Recording(TIME_PERIOD_DAYS, f"vector({days})", own),
        Recording(
            CURRENT_BURN_RATE,
            f"{sli_record(spec.base_window)}{sel}\n/ {on}\n{ERROR_BUDGET}{sel}",
            own,
        ),
        Recording(
            PERIOD_BURN_RATE,
            f"{sli_record(spec.period)}{sel}\n/ {on}\n{ERROR_BUDGET}{sel}",
            own,
        ),
        Recording(BUDGET_REMAINING, f"1 - {PERIOD_BURN_RATE}{sel}", own),
    ]
    return Group(f"{slo_id(spec, slo)}-meta", rules)


def _exhaustion(spec: ServiceSLOs, alert: BurnRateAlert) -> str:
    hours = promql.seconds(spec.period) / float(alert.burn_rate) / 3600
    return f"about {hours:.0f} hours" if hours < 72 else f"about {hours / 24:.0f} days"


def _what(slo: SLO) -> str:
    if isinstance(slo.sli, AvailabilitySLI):
        return "of API and page requests failed with a server error (5xx)"
    return f"of API and page requests took longer than {slo.sli.threshold_seconds * 1000:g} ms"


def burn_alert(spec: ServiceSLOs, slo: SLO, alert: BurnRateAlert) -> Alert:
    sel = _selector(spec, slo)
    threshold = f"({promql.number(alert.burn_rate)} * {promql.number(slo.error_budget)})"
    long_, short = alert.long_window, alert.short_window
    expr = (
        f"max without ({labels.SLO_WINDOW}) ({sli_record(long_)}{sel}) > {threshold}\n"
        f"and\n"
        f"max without ({labels.SLO_WINDOW}) ({sli_record(short)}{sel}) > {threshold}"
    )
    budget_pct = promql.number(slo.error_budget * 100)
    return Alert(
        name=alert_name(spec, slo, alert),
        expr=expr,
        severity=alert.severity,
        summary=(
            f"{camel(spec.service)} {slo.title.lower()} SLO: error budget burning at "
            f"{promql.number(alert.burn_rate)}× over {long_} and {short}"
        ),
        description=(
            f"{{{{ $value | humanizePercentage }}}} {_what(slo)} in namespace {{{{ $labels.namespace }}}} "
            f"over the last {long_} (and still over the last {short}): {promql.number(alert.burn_rate)}× "
            f"the {budget_pct} % error budget of the {promql.number(slo.objective_percent)} % objective. "
            f"At this rate the {spec.period} budget is spent in {_exhaustion(spec, alert)}."
        ),
        labels={},
    )


def rule_file(spec: ServiceSLOs) -> RuleFile:
    groups: list[Group] = []
    for slo in spec.slos:
        groups += [sli_group(spec, slo), meta_group(spec, slo)]
    return RuleFile(
        filename=f"{spec.service}-slo.yml",
        about=(
            f"SLO recording rules and multi-window multi-burn-rate alerts of {spec.service} "
            f"({', '.join(s.name for s in spec.slos)}), Sloth naming."
        ),
        groups=groups,
    )


# -- runbooks ----------------------------------------------------------------------------------


def runbook(spec: ServiceSLOs, slo: SLO, alert: BurnRateAlert) -> str:
    """The runbook page of one burn-rate alert, written from the SLO file."""
    name = alert_name(spec, slo, alert)
    sel = f'{labels.SLO_ID}="{slo_id(spec, slo)}"'
    namespace = cluster.load().app_namespace
    undo = (
        f"`kubectl argo rollouts abort {spec.service} -n {namespace}`, then\n"
        f"  `kubectl argo rollouts undo {spec.service} -n {namespace}`"
    )
    urgency = (
        "It pages: at this rate users notice within the hour, act now."
        if alert.severity == "page"
        else "It opens a ticket: no one needs to wake up, but the budget will not last the period."
    )
    if isinstance(slo.sli, AvailabilitySLI):
        where = (
            "which routes return 5xx: the *Service overview* dashboard's error-ratio panel, or\n"
            f"   `sum by (route, status) (rate({names.HTTP_REQUESTS.total}"
            f'{{{names.STATUS}=~"{names.SERVER_ERROR_MATCHER}"}}[5m]))`\n'
            "   in Prometheus. Follow a failing route to its logs (OpenSearch saved search\n"
            "   *Server errors by route*) and from a log line's `trace_id` to the trace in Jaeger."
        )
        causes = (
            "- **Database unavailable** (`503`, `database_unavailable` in the logs): see\n"
            "  [TaskboardDatabaseErrors](TaskboardDatabaseErrors.md) and the RDS alerts.\n"
            f"- **A bad release** (errors start with a rollout): abort or undo it —\n  {undo}.\n"
            f"- **A fault-injection drill left on** (`{names.FAULTS_INJECTED.total}` rising): clear it with\n"
            "  `DELETE /admin/faults` (never enabled in production)."
        )
    else:
        where = (
            "which routes are slow: the *Service overview* dashboard's p99 per route, or\n"
            f"   `histogram_quantile(0.99, sum by (route, le) (rate({names.HTTP_REQUEST_DURATION.bucket}[5m])))`.\n"
            "   Open an exemplar or a slow trace in Jaeger to see where the time goes (database\n"
            "   spans vs. the Python layer)."
        )
        causes = (
            "- **Saturation** (in-flight requests ≈ workers, pool in use ≈ pool size): scale out —\n"
            "  check the HPA is not at its maximum ([TaskboardHPAMaxedOut](TaskboardHPAMaxedOut.md)).\n"
            "- **Slow queries** ([TaskboardDatabaseQueryLatencyHigh](TaskboardDatabaseQueryLatencyHigh.md),\n"
            "  RDS CPU): look at RDS Performance Insights for the top statement.\n"
            "- **CPU throttling** (Kubernetes dashboard): raise the CPU limit or the replica count.\n"
            f"- **A bad release**: abort or undo the rollout —\n  {undo}."
        )
    source = spec.path.relative_to(ROOT).as_posix()
    what = slo.description.rstrip(".")
    if isinstance(slo.sli, LatencySLI):
        what += f" ({slo.sli.threshold_seconds * 1000:g} ms)"
    objective, burn = promql.number(slo.objective_percent), promql.number(alert.burn_rate)
    long_, short = alert.long_window, alert.short_window
    threshold = f"{burn} * {promql.number(slo.error_budget)}"
    return f"""{GENERATED_RUNBOOK_MARK}`make generate` from {source} and observability/slo_rules.py; do not edit. -->
# {name}

## What it means

The {slo.title.lower()} SLO of {spec.service} (*{what}*; objective {objective} % over {spec.period})
is spending its error budget {burn} times faster than the period allows, measured over both {long_}
and {short}. At this rate the whole {spec.period} budget is gone in {_exhaustion(spec, alert)}. {urgency}

The short window ({short}) makes the alert resolve soon after the cause stops; the long window
({long_}) keeps a brief spike from alerting at all. On a freshly started system the long
windows hold little data, so several burn-rate alerts can fire together; a page inhibits the tickets
of the same SLO in Alertmanager.

## How to check

1. Open the *SLOs and error budget* dashboard: SLI against the objective, burn rate per window,
   budget remaining. In Prometheus: `{sli_record(long_)}{{{sel}}}` and
   `{sli_record(short)}{{{sel}}}` against `{threshold}`.
2. Find {where}
3. Check whether it is one namespace (the alert's `namespace` label) or all of them.

## How to mitigate

{causes}

When the cause is fixed the alert resolves within about {short}. Record the budget spent
(`{BUDGET_REMAINING}{{{sel}}}`) in the incident notes.
"""
