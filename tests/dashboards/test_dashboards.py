"""Dashboards as generated JSON (current with their sources: tests/observability/test_generated.py): classic
format, a fixed datasource UID on every panel and target, the variables, exemplars on latency, links that resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from app import metric_names as names
from dashboards import builder, generate
from observability import cluster_metrics, datasources
from tests import expressions

GENERATED = sorted(generate.OUT_DIR.glob("*.json"))
DATASOURCES_FILE = Path(datasources.__file__).resolve().parent / "grafana" / "datasources.yaml"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def provisioned() -> dict[str, dict[str, Any]]:
    """The data sources in observability/grafana/datasources.yaml, by UID."""
    return {d["uid"]: d for d in yaml.safe_load(DATASOURCES_FILE.read_text())["datasources"]}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_five_dashboards_with_distinct_uids() -> None:
    uids = [load(p)["uid"] for p in GENERATED]
    assert len(uids) == len(set(uids)) == 5
    assert {f"{u}.json" for u in uids} == {p.name for p in GENERATED}


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_classic_format_grafana_can_provision(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["schemaVersion"] == builder.SCHEMA_VERSION
    assert "id" not in dashboard, "a provisioned dashboard must not pin an id"
    assert isinstance(dashboard["panels"], list) and dashboard["panels"]
    assert "rows" not in dashboard or dashboard["rows"] == []
    for v2_key in ("elements", "layout", "apiVersion", "spec"):
        assert v2_key not in dashboard, f"{v2_key}: Grafana 13's v2 format, which file provisioning rejects"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= builder.GRID_WIDTH


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_every_panel_and_target_names_a_provisioned_datasource(path: Path) -> None:
    defined = provisioned()
    for panel in panels(load(path)):
        assert panel["datasource"]["uid"] in defined, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            ref = target["datasource"]
            assert ref["uid"] in defined, f"{panel['title']}: {ref}"
            assert ref["type"] == defined[ref["uid"]]["type"], f"{panel['title']}: {ref}"


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_variables_for_environment_namespace_and_service(path: Path) -> None:
    variables = {v["name"]: v for v in load(path)["templating"]["list"]}
    assert set(variables) == {builder.VAR_ENVIRONMENT, builder.VAR_NAMESPACE, builder.VAR_SERVICE}
    for variable in variables.values():
        assert variable["datasource"]["uid"] in provisioned()
    text = path.read_text()
    for name in variables:
        assert f"${name}" in text, f"${name} is never used"


def test_latency_panels_show_exemplars() -> None:
    latency = [
        (path.stem, panel)
        for path in GENERATED
        for panel in panels(load(path))
        if "atency" in panel["title"]
        and "histogram_quantile" in json.dumps(panel["targets"])
        and "http_request_duration" in json.dumps(panel["targets"])
    ]
    assert latency
    for name, panel in latency:
        assert all(t["exemplar"] for t in panel["targets"]), f"{name}: {panel['title']}"


def _link_datasources(url: str) -> set[str]:
    """The datasource UIDs a Grafana Explore link opens (the JSON in its panes/left parameter)."""
    query = parse_qs(urlsplit(url).query)
    raw = (query.get("panes") or query.get("left") or [""])[0]
    text = re.sub(r"\$\{[^}]+\}", "x", unquote(raw))
    data = json.loads(text)
    found = set()
    for pane in data.values() if "queries" not in data else [data]:
        found.add(pane["datasource"])
        found |= {q["datasource"]["uid"] for q in pane["queries"]}
    return found


def test_every_data_link_opens_a_defined_datasource() -> None:
    defined, links = provisioned(), 0
    for path in GENERATED:
        for panel in panels(load(path)):
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                links += 1
                assert link["url"].startswith("/explore?")
                assert _link_datasources(link["url"]) <= set(defined), link["url"]
                assert _link_datasources(link["url"]) == {datasources.OPENSEARCH.uid}
    assert links >= 5


# Panels by route that do not link to the logs of their route, and why. Listed so that the rule below
# stays exact: a panel that gains the link must leave this list.
ROUTE_PANELS_WITHOUT_LOGS = {
    ("taskboard-service", "Faults injected (drills)"): "drills only; found when this test began reading PromQL",
}


def test_route_panels_link_to_the_logs_of_their_route() -> None:
    """A panel whose series are aggregated by route links to the logs of the route clicked, and only such a
    panel links there (elsewhere ${__field.labels.route} would be empty)."""
    by_route, linked = set(), set()
    for path in GENERATED:
        for panel in panels(load(path)):
            key = (path.stem, panel["title"])
            if any(names.ROUTE in (expressions.grouping(t["expr"]) or ()) for t in panel["targets"]):
                by_route.add(key)
            urls = [link["url"] for link in panel["fieldConfig"]["defaults"].get("links", [])]
            if any(f"__field.labels.{names.ROUTE}" in url for url in urls):
                linked.add(key)
    assert len(by_route) >= 5, sorted(by_route)
    assert set(ROUTE_PANELS_WITHOUT_LOGS) <= by_route - linked, "a listed panel links to its logs now: unlist it"
    assert by_route - set(ROUTE_PANELS_WITHOUT_LOGS) == linked


def test_datasource_links_resolve_to_defined_datasources() -> None:
    defined = provisioned()
    prometheus = defined[datasources.PROMETHEUS.uid]["jsonData"]
    assert {d["datasourceUid"] for d in prometheus["exemplarTraceIdDestinations"]} == {datasources.JAEGER.uid}
    assert prometheus["exemplarTraceIdDestinations"][0]["name"] == datasources.TRACE_ID
    jaeger = defined[datasources.JAEGER.uid]["jsonData"]["tracesToLogsV2"]
    assert jaeger["datasourceUid"] in defined
    assert jaeger["query"] == 'trace_id:"$${__trace.traceId}"'  # $$: a literal $ in provisioning files
    opensearch = defined[datasources.OPENSEARCH.uid]["jsonData"]
    assert {link["datasourceUid"] for link in opensearch["dataLinks"]} <= set(defined)
    assert opensearch["dataLinks"][0]["field"] == datasources.TRACE_ID


def test_cluster_only_panels_are_marked_and_read_listed_metrics() -> None:
    marked = 0
    for dashboard in generate.dashboards():
        data = dashboard.build()
        by_id = {p["id"]: p for p in data["panels"]}
        for spec in dashboard.panels:
            used = {name for query in spec.queries for name in expressions.metric_names(query.expr)}
            assert used, spec.title
            if spec.cluster_only is not None:
                marked += 1
                assert used <= cluster_metrics.listed()
                assert "Cluster only" in by_id[spec.id]["description"]
            else:
                assert not used & cluster_metrics.cluster_only(), spec.title
    assert marked > 0


def test_marking_is_enforced_when_building() -> None:
    unmarked = builder.Panel("CPU", [builder.Query("rate(container_cpu_usage_seconds_total[5m])")])
    with pytest.raises(ValueError, match="cluster_only"):
        builder.Dashboard("x", "x", "x", [builder.Row("r", [unmarked])]).build()
