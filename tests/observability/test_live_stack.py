"""The rules against the real service and a real Prometheus (started through local.stack): every rules file
loaded, every metric they read exposed, the SLIs equal to the traffic sent, the page alerts firing."""

from __future__ import annotations

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app import endpoints
from app import metric_names as names
from dashboards import generate as dashboards_generate
from observability.paths import RULES_DIR
from tests import expressions
from tests.observability.live import Live


def exposed_samples(live: Live) -> set[str]:
    text = requests.get(f"{live.app_url}{endpoints.METRICS}", timeout=10).text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_prometheus_loaded_every_rules_file_and_every_group(live: Live) -> None:
    """Lesson 6: check what the server loaded, not only the files."""
    expected = {
        (str(path), group["name"])
        for path in sorted(RULES_DIR.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    }
    groups = requests.get(f"{live.prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {(group["file"], group["name"]) for group in groups}
    assert loaded == expected
    assert len(groups) == len(expected)
    unhealthy = [(g["name"], r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert unhealthy == []


def test_the_service_exposes_every_metric_rules_and_dashboards_read(live: Live) -> None:
    exposed = exposed_samples(live)
    service_series = {series for metric in names.ALL for series in metric.series}
    read = set()
    for path in RULES_DIR.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                read |= expressions.metric_names(rule["expr"])
    for dashboard in dashboards_generate.dashboards():
        dashboard.build()
        for panel in dashboard.panels:
            read |= {name for query in panel.queries for name in expressions.metric_names(query.expr)}
    ours = {name for name in read if name.startswith(names.NAMESPACE + "_")}
    assert ours, "rules and dashboards read the service's metrics"
    assert ours <= service_series, f"not in app.metric_names: {sorted(ours - service_series)}"
    assert not ours - exposed, f"the running service does not expose {sorted(ours - exposed)}"


def test_every_metric_of_the_service_is_exposed_after_the_drill(live: Live) -> None:
    exposed = exposed_samples(live)
    for metric in names.ALL:
        assert set(metric.series) & exposed, f"{metric.name} never appeared on {endpoints.METRICS}"


def _recorded(live: Live, slo: str) -> float:
    result = live.query(f'slo:sli_error:ratio_rate5m{{sloth_id="{endpoints.SERVICE_NAME}-{slo}"}}')
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_recorded_slis_match_the_traffic_sent(live: Live) -> None:
    """Lesson 7: the SLI computed over the test window, compared with what the client saw."""
    traffic = live.traffic
    assert traffic.user_total > 100
    sent_errors = traffic.user_5xx / traffic.user_total
    sent_slow = traffic.user_slow / traffic.user_total
    assert abs(_recorded(live, "availability") - sent_errors) < 0.05, (sent_errors, traffic)
    assert abs(_recorded(live, "latency") - sent_slow) < 0.05, (sent_slow, traffic)


def test_the_drill_pages_for_both_slos(live: Live) -> None:
    """Which alerts fired is a second, explicit assertion, filtered on severity."""
    firing = {r["metric"]["alertname"] for r in live.query('ALERTS{alertstate="firing",severity="page"}')}
    for slo in ("Availability", "Latency"):
        assert f"Taskboard{slo}FastBurn" in firing
    # The fast 5xx detector waits `for: 2m`: pending (or firing) by now, never absent.
    states = {r["metric"]["alertstate"] for r in live.query('ALERTS{alertname="TaskboardHighErrorRatio"}')}
    assert states & {"pending", "firing"}
    # Nothing is down: the scrape alerts stay silent.
    assert not live.query('ALERTS{alertname=~"TaskboardTargetDown|TaskboardNoTargetUp"}')
