"""SLOs and error budget: every SLO of the SLO file, its SLI against the objective, burn rate per
window, budget left, and the burn-rate alerts — all from the recorded series of observability/slo_rules.py."""

from __future__ import annotations

from dashboards.builder import VAR_NAMESPACE, VAR_SERVICE, Dashboard, Panel, Query, Row
from dashboards.src.traffic import slos
from observability import cluster_metrics, labels, promql
from observability.slo.spec import SLO, ServiceSLOs
from observability.slo_rules import BUDGET_REMAINING, ERROR_BUDGET, OBJECTIVE, sli_record, slo_id

UID = "taskboard-slo"


def _sel(spec: ServiceSLOs, slo: SLO, *, namespace: bool = True) -> str:
    matchers = [f"{labels.SLO_ID}={promql.quote(slo_id(spec, slo))}"]
    if namespace:
        matchers.append(f'{labels.NAMESPACE}=~"${VAR_NAMESPACE}"')
    return "{" + ",".join(matchers) + "}"


def _row(spec: ServiceSLOs, slo: SLO) -> Row:
    own, meta = _sel(spec, slo), _sel(spec, slo, namespace=False)
    on = f"on ({labels.SLO_ID}) group_left"
    objective = float(slo.objective)
    burn = [Query(f"{sli_record(w)}{own}\n/ {on}\n{ERROR_BUDGET}{meta}", w) for w in spec.windows]
    thresholds = sorted({float(a.burn_rate) for a in spec.burn_rate_alerts})
    return Row(
        f"{slo.title}: {slo.description} Objective {promql.number(slo.objective_percent)} % over {spec.period}",
        [
            Panel(
                f"{slo.title} SLI against the objective",
                [
                    Query(f"1 - {sli_record(spec.base_window)}{own}", f"SLI {spec.base_window}"),
                    Query(f"1 - {sli_record(spec.period)}{own}", f"SLI {spec.period}"),
                    Query(f"{OBJECTIVE}{meta}", "objective"),
                ],
                unit="percentunit",
                width=10,
                thresholds=(("red", None), ("green", objective)),
            ),
            Panel(
                f"{slo.title} burn rate per window",
                burn,
                description="Error ratio ÷ error budget: 1 spends the budget exactly over the period. The "
                "alerts fire at " + ", ".join(f"{t:g}×" for t in thresholds) + " (both windows of a pair).",
                width=10,
                thresholds=(("green", None), *(("orange" if t < 6 else "red", t) for t in thresholds)),
            ),
            Panel(
                f"{slo.title} error budget left ({spec.period})",
                [Query(f"{BUDGET_REMAINING}{own}", "{{namespace}}")],
                kind="stat",
                unit="percentunit",
                width=4,
                thresholds=(("red", None), ("orange", 0.25), ("green", 0.5)),
            ),
            Panel(
                f"{slo.title} error budget left over time",
                [Query(f"{BUDGET_REMAINING}{own}", "{{namespace}}")],
                unit="percentunit",
                width=24,
                height=6,
            ),
        ],
    )


def dashboard() -> Dashboard:
    spec = slos()
    alerts_metric = cluster_metrics.metric("prometheus", "ALERTS")
    alert_sel = f'{{{labels.SLO_SERVICE}=~"${VAR_SERVICE}",{labels.NAMESPACE}=~"${VAR_NAMESPACE}"}}'
    by_alert = f"{labels.ALERTNAME}, alertstate, {labels.SEVERITY}, {labels.NAMESPACE}"
    alerts = Row(
        "Burn-rate alerts",
        [
            Panel(
                "Burn-rate alerts pending or firing",
                [Query(f"count({alerts_metric}{alert_sel}) or vector(0)", "alerts", instant=True)],
                kind="stat",
                width=6,
                thresholds=(("green", None), ("red", 1)),
            ),
            Panel(
                "Burn-rate alerts by state",
                [
                    Query(
                        f"sum by ({by_alert}) ({alerts_metric}{alert_sel})",
                        instant=True,
                        table=True,
                    )
                ],
                kind="table",
                width=18,
                no_value="No burn-rate alert is pending or firing",
            ),
        ],
    )
    return Dashboard(
        uid=UID,
        title="Task board / SLOs and error budget",
        description=f"The SLOs of {spec.path.name}: SLI against objective, burn rate per window, budget left.",
        rows=[*(_row(spec, slo) for slo in spec.slos), alerts],
        time_from="now-7d",
        refresh="1m",
    )
