"""k8s/generate.py: each generated manifest carries its source faithfully (rule files, dashboards, the SLO
objectives, the locustfile). That they are current is tests/observability/test_generated.py's check."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from app import metric_names as names
from dashboards import generate as dashboards_generate
from k8s import generate
from observability.paths import RULES_DIR, SLO_FILE
from observability.slo import spec as slo_spec
from tests.k8s.manifests import ROOT, cluster, find, one, render
from tests.observability.tools import promtool


def test_every_rule_file_becomes_a_prometheus_rule_with_its_groups_verbatim() -> None:
    rules = {d["metadata"]["name"]: d for d in find(render("base"), "PrometheusRule")}
    files = sorted(RULES_DIR.glob("*.y*ml"))
    assert files, "observability/rules/ has no rule files"
    assert sorted(rules) == sorted(p.stem for p in files), "a rule file is missing (or extra) in the rendered base"
    for path in files:
        assert rules[path.stem]["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"], path.name


def test_every_dashboard_becomes_a_config_map_with_its_json_byte_for_byte() -> None:
    label = cluster()["monitoring"]["grafana_dashboard_label"]
    maps = {
        d["metadata"]["name"]: d
        for d in find(render("base"), "ConfigMap")
        if d["metadata"]["name"].startswith("dashboard-")
    }
    files = sorted(dashboards_generate.OUT_DIR.glob("*.json"))
    assert sorted(maps) == sorted(f"dashboard-{p.stem}" for p in files)
    for path in files:
        config_map = maps[f"dashboard-{path.stem}"]
        assert config_map["data"] == {path.name: path.read_text()}
        assert json.loads(config_map["data"][path.name])["uid"]
        assert {k: str(v) for k, v in label.items()}.items() <= config_map["metadata"]["labels"].items()


def test_a_malformed_rule_file_is_refused() -> None:
    with pytest.raises(generate.GenerateError, match=r"observability/rules/broken\.yml"):
        generate.monitoring({RULES_DIR / "broken.yml": "groups: {not: a list}\n"}, {})


def test_the_analysis_judges_each_slo_by_its_objective() -> None:
    spec = slo_spec.load(SLO_FILE)
    template = one(render("overlays/prod"), "AnalysisTemplate", generate.ANALYSIS_NAME)
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    assert sorted(metrics) == sorted(s.name for s in spec.slos)
    for slo in spec.slos:
        metric = metrics[slo.name]
        objective = float(slo.objective)
        success = re.search(r"result\[0\] >= ([0-9.]+)$", metric["successCondition"])
        failure = re.search(r"result\[0\] < ([0-9.]+)$", metric["failureCondition"])
        assert success and failure and float(success[1]) == float(failure[1]) == objective, metric
        query = metric["provider"]["prometheus"]["query"]
        assert "rollouts_pod_template_hash=" in query and "{{args.canary-hash}}" in query
        series = names.HTTP_REQUESTS.total if slo.name == "availability" else names.HTTP_REQUEST_DURATION.count
        assert series in query
        assert metric["provider"]["prometheus"]["address"].startswith(
            f"http://{cluster()['monitoring']['release']}-prometheus.{cluster()['monitoring']['namespace']}.svc:"
        )


@pytest.mark.slow  # promtool (Debian package prometheus)
def test_the_analysis_queries_are_valid_promql(tmp_path: Path) -> None:
    template = one(render("overlays/prod"), "AnalysisTemplate", generate.ANALYSIS_NAME)
    rules = [
        {
            "record": f"canary:{m['name']}:ratio",
            "expr": m["provider"]["prometheus"]["query"]
            .replace("{{args.namespace}}", "taskboard")
            .replace("{{args.canary-hash}}", "6d4f8b9c7"),
        }
        for m in template["spec"]["metrics"]
    ]
    path = tmp_path / "canary.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "canary", "rules": rules}]}))
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_canary_label_is_the_one_the_service_monitor_copies() -> None:
    monitor = one(render("base"), "ServiceMonitor")
    assert "rollouts-pod-template-hash" in monitor["spec"]["podTargetLabels"]
    assert generate.canary_hash_label() == "rollouts_pod_template_hash"


def test_the_locustfile_config_map_is_loadtest_locustfile() -> None:
    docs = render("loadgen")
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("locustfile"))
    source = (ROOT / "loadtest" / "locustfile.py").read_text()
    assert config_map["data"] == {"locustfile.py": source}
    digests = {
        d["spec"]["template"]["metadata"]["annotations"]["checksum/locustfile"] for d in find(docs, "Deployment")
    }
    assert digests == {hashlib.sha256(source.encode()).hexdigest()}
