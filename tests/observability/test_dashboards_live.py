"""The dashboards' proof: every panel query, with its variables substituted as Grafana would, sent to the
live Prometheus fed by the real service. Each must parse and return data, except panels over metrics that
exist only in the cluster: those are marked in their source, and their metric names must be on the list."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from dashboards import generate
from dashboards.builder import Panel
from observability import cluster_metrics
from tests import expressions
from tests.observability.live import Live

# Grafana's built-in interval variables, as it would set them for a short range on this stack.
BUILTINS = {"__rate_interval": "2m", "__interval": "15s", "__range": "5m"}
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")
GENERATED = sorted(generate.OUT_DIR.glob("*.json"))


def substitute(text: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown variable ${name} in {text!r}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def resolve_variables(live: Live, dashboard: dict[str, Any]) -> dict[str, str]:
    """Each variable's value, in order, by running its label_values() query like Grafana does."""
    values = dict(BUILTINS)
    for variable in dashboard["templating"]["list"]:
        match = LABEL_VALUES.fullmatch(variable["query"])
        assert match, variable["query"]
        selector = substitute(match.group("selector"), values)
        response = requests.get(
            f"{live.prometheus_url}/api/v1/label/{match.group('label')}/values",
            params={"match[]": selector, "start": str(live.proof_time - 600), "end": str(live.proof_time)},
            timeout=10,
        ).json()
        assert response["status"] == "success", response
        found = sorted(response["data"])
        if variable["includeAll"]:
            values[variable["name"]] = variable["allValue"]  # "All" is what a dashboard opens with
        else:
            assert found, f"variable {variable['name']}: {selector} has no {match.group('label')} values"
            values[variable["name"]] = found[0]
    return values


def specs_by_id(uid: str) -> dict[int, Panel]:
    for dashboard in generate.dashboards():
        if dashboard.uid == uid:
            dashboard.build()
            return {panel.id: panel for panel in dashboard.panels}
    raise KeyError(uid)


@pytest.mark.parametrize("path", GENERATED, ids=lambda p: p.stem)
def test_every_panel_query_returns_data_or_is_cluster_only(live: Live, path: Path) -> None:
    dashboard = json.loads(path.read_text())
    values = resolve_variables(live, dashboard)
    specs = specs_by_id(dashboard["uid"])
    no_data: list[str] = []
    proven = cluster_only = 0
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        spec = specs[panel["id"]]
        assert spec.title == panel["title"]
        for target in panel["targets"]:
            expr = substitute(target["expr"], values)
            result = live.query(expr)  # raises unless Prometheus parses it
            if spec.cluster_only is not None:
                used = expressions.metric_names(expr)
                assert used <= cluster_metrics.listed(), f"{panel['title']}: {sorted(used - cluster_metrics.listed())}"
                assert used & cluster_metrics.cluster_only(), panel["title"]
            elif not result:
                raw = live.query(f'{{__name__=~"{"|".join(expressions.metric_names(expr))}"}}[5m]')
                no_data.append(f"{panel['title']} [{target['refId']}]: {expr}\n  raw: {raw}")
        if spec.cluster_only is not None:
            cluster_only += 1
        else:
            proven += 1
    assert no_data == [], "panels without data:\n" + "\n".join(no_data)
    print(f"{dashboard['uid']}: {proven} panels proven with data, {cluster_only} cluster-only")
