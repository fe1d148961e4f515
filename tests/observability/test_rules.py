"""Every rule file: promtool-clean, every alert complete (severity, summary, description, runbook), every
metric it reads either exposed by the service, recorded by a rule, or on the cluster metrics list."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import metric_names as names
from dashboards import generate as dashboards_generate
from observability import cluster_metrics, promql
from observability.links import RUNBOOK_DIR, runbook_base_url, runbook_path
from observability.paths import RULES_DIR
from observability.rules import SEVERITIES
from tests import expressions
from tests.observability.tools import promtool

RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
SERVICE_SERIES = {series for metric in names.ALL for series in metric.series}
RUNBOOK_SECTIONS = ("## What it means", "## How to check", "## How to mitigate")


def rules(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [(path.name, rule) for rule in group["rules"] if kind in rule]
    return found


ALERTS = rules("alert")
RECORDED = {rule["record"] for _, rule in rules("record")}


@pytest.mark.slow  # promtool: Debian package prometheus
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_is_clean(path: Path) -> None:
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_alert_names_are_unique() -> None:
    names_ = [rule["alert"] for _, rule in ALERTS]
    assert len(names_) == len(set(names_))


@pytest.mark.parametrize(("file", "rule"), ALERTS, ids=[rule["alert"] for _, rule in ALERTS])
def test_every_alert_is_complete_and_has_its_runbook(file: str, rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert len(annotations["description"]) > 40
    base = runbook_base_url()
    assert annotations["runbook_url"] == f"{base}/{name}.md"
    assert base.startswith("https://github.com/") and base.endswith("/docs/runbooks")
    page = runbook_path(name)
    assert page.is_file(), f"{name}: {page} is missing"
    text = page.read_text()
    assert re.search(rf"^# {name}$", text, re.MULTILINE), f"{page.name}: the title must be the alert name"
    positions = [text.find(section) for section in RUNBOOK_SECTIONS]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), f"{page.name}: {RUNBOOK_SECTIONS}"
    for start, end in zip(positions, [*positions[1:], len(text)], strict=True):
        body = text[start:end].split("\n", 1)[1].strip()
        assert len(body) > 80, f"{page.name}: a section is (nearly) empty"


def test_no_runbook_without_an_alert() -> None:
    alerts = {rule["alert"] for _, rule in ALERTS}
    pages = {p.stem for p in RUNBOOK_DIR.glob("*.md")} - {"README"}
    assert pages == alerts


def test_runbooks_link_only_to_runbooks_that_exist() -> None:
    for page in RUNBOOK_DIR.glob("*.md"):
        for target in re.findall(r"\]\(([A-Za-z]+)\.md\)", page.read_text()):
            assert (RUNBOOK_DIR / f"{target}.md").is_file(), f"{page.name} links to {target}.md"


def test_runbooks_name_only_metrics_that_exist() -> None:
    families = {metric.name for metric in names.ALL}
    known = SERVICE_SERIES | families | cluster_metrics.listed() | RECORDED
    prefixes = (names.NAMESPACE + "_", "kube_", "aws_", "fluentbit_", "rollout_", "container_", "slo:")
    for page in RUNBOOK_DIR.glob("*.md"):
        mentioned = set(re.findall(r"\b([a-z][a-z0-9_]*(?::[a-z0-9_]+)*)\b", page.read_text()))
        unknown = {m for m in mentioned if m.startswith(prefixes) and m not in known}
        assert not unknown, f"{page.name} names metrics nobody exposes: {sorted(unknown)}"


@pytest.mark.parametrize("kind", ["alert", "record"])
def test_every_metric_a_rule_reads_is_exposed_recorded_or_listed(kind: str) -> None:
    known = SERVICE_SERIES | cluster_metrics.listed() | RECORDED
    assert rules(kind)
    for file, rule in rules(kind):
        read = expressions.metric_names(rule["expr"])
        assert read or re.fullmatch(r"vector\([0-9.]+\)", rule["expr"].strip()), f"{file} {rule[kind]} reads nothing"
        unknown = read - known
        assert not unknown, f"{file} {rule[kind]}: {sorted(unknown)} is neither exposed, recorded nor listed"


def test_the_parser_reads_what_rules_select() -> None:
    expr = (
        'sum by (namespace) (rate(taskboard_http_requests_total{route!~"/a|/b",status=~"5.."}[5m]))\n'
        "/ on (sloth_id) group_left\n"
        'slo:error_budget:ratio{sloth_id="x"} > (14.4 * 0.001) and absent(up{job="y"}) or vector(1)'
    )
    assert expressions.metric_names(expr) == {"taskboard_http_requests_total", "slo:error_budget:ratio", "up"}
    assert expressions.grouping(expr) == {"namespace"}
    with pytest.raises(ValueError, match="by a pattern"):
        expressions.metric_names('{__name__=~"taskboard_.+"}')
    with pytest.raises(ValueError):
        expressions.metric_names("sum(rate(x[5m])")  # unbalanced: a real parser refuses it


def every_expression() -> list[tuple[str, str]]:
    """(where, expression) for every rule and every dashboard target."""
    found = [(f"{file}: {rule.get('alert') or rule['record']}", rule["expr"]) for file, rule in rules("expr")]
    for path in sorted(dashboards_generate.OUT_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel.get("targets", [])]
    return found


def test_the_project_scanner_agrees_with_the_parser_on_every_rule_and_panel() -> None:
    """observability.promql.metric_names lists what alerts read in the runbooks, and decides at build time
    which panels are cluster-only: it must read every expression as PromQL's grammar does."""
    checked = every_expression()
    assert len(checked) > 100
    disagree = [
        f"{where}: scanner {sorted(promql.metric_names(expr))}, parser {sorted(expressions.metric_names(expr))}"
        for where, expr in checked
        if promql.metric_names(expr) != expressions.metric_names(expr)
    ]
    assert disagree == []


def test_cluster_metric_list_names_its_sources() -> None:
    for exporter in cluster_metrics.exporters().values():
        assert exporter.source.startswith("https://"), exporter.name
        assert exporter.version, exporter.name
        assert exporter.metrics, exporter.name
    with pytest.raises(KeyError):
        cluster_metrics.metric("kube-state-metrics", "kube_pod_restarts_total")
