"""Custom resources against the official CRD schemas of the releases infra/ installs (tests/k8s/crd-schemas/)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.k8s import crd
from tests.k8s.manifests import ROOT, TARGETS, Doc, argocd, one, render

# Which Helm release of infra/addons/ installs each stored CRD.
CHART_OF_KIND = {
    "Rollout": "argo-rollouts",
    "AnalysisTemplate": "argo-rollouts",
    "Application": "argo-cd",
    "AppProject": "argo-cd",
    "ServiceMonitor": "kube-prometheus-stack",
    "PrometheusRule": "kube-prometheus-stack",
    "ExternalSecret": "external-secrets",
    "Password": "external-secrets",
}


def _custom_resources() -> list[Doc]:
    docs = [d for target in TARGETS for d in render(target)] + argocd()
    return [d for d in docs if (d["apiVersion"], d["kind"]) in crd.schemas()]


def _installed_charts() -> dict[str, str]:
    """chart → version of every helm_release in infra/addons/*.tf."""
    charts: dict[str, str] = {}
    for path in sorted((ROOT / "infra" / "addons").glob("*.tf")):
        for chart, version in re.findall(r'chart\s*=\s*"([^"$]+)"\s*\n\s*version\s*=\s*"([^"]+)"', path.read_text()):
            charts[chart] = version
    return charts


def test_every_custom_resource_matches_its_crd_schema() -> None:
    resources = _custom_resources()
    kinds = {d["kind"] for d in resources}
    assert kinds >= {"ServiceMonitor", "PrometheusRule", "Rollout", "AnalysisTemplate", "ExternalSecret"}, kinds
    assert kinds >= {"Application", "AppProject", "Password"}, kinds
    problems = [problem for doc in resources for problem in crd.errors(doc)]
    assert not problems, "\n".join(problems)


def _parent(doc: Doc, path: str) -> tuple[Any, int | str]:
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    return node, int(last) if last.isdigit() else last


def _set(path: str, value: object) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        node, key = _parent(doc, path)
        node[key] = value

    return mutate


def _delete(path: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        node, key = _parent(doc, path)
        del node[key]

    return mutate


BROKEN_ROLLOUTS = {
    "misspelt step": (_set("spec.strategy.canary.steps.0", {"setWieght": 10}), "setWieght"),
    "weight as text": (_set("spec.strategy.canary.steps.0.setWeight", "ten"), "ten"),
    "ALB without its port": (_delete("spec.strategy.canary.trafficRouting.alb.servicePort"), "servicePort"),
    "unknown strategy": (_set("spec.strategy.bluegreen", {"activeService": "taskboard"}), "bluegreen"),
    "container port as text": (
        _set("spec.template.spec.containers.0.ports.0.containerPort", "http"),
        "http",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_ROLLOUTS))
def test_a_broken_rollout_is_refused(case: str) -> None:
    mutate, culprit = BROKEN_ROLLOUTS[case]
    rollout = copy.deepcopy(one(render("overlays/prod"), "Rollout", "taskboard"))
    assert crd.errors(rollout) == []
    mutate(rollout)
    problems = crd.errors(rollout)
    assert problems, f"the Rollout schema accepted a {case}"
    assert any(culprit in problem for problem in problems), problems


def test_schemas_come_from_the_releases_infra_installs() -> None:
    charts = _installed_charts()
    for (api_version, kind), _ in crd.schemas().items():
        chart = CHART_OF_KIND[kind]
        assert chart in charts, f"infra/addons installs no {chart} chart, yet {kind} is validated against it"
        note = crd.source(api_version, kind)
        assert f"chart {chart} {charts[chart]} " in note, (
            f"{kind}: schema from {note!r}, but infra/addons installs {chart} {charts[chart]}: "
            "re-extract it with tests/k8s/crd-schemas/extract.py"
        )
        assert re.search(r"https://github\.com/\S+/blob/\S+", note), f"{kind}: the schema names no source URL"


def test_every_stored_schema_is_used() -> None:
    used = {(d["apiVersion"], d["kind"]) for d in _custom_resources()}
    assert set(crd.schemas()) == used, f"schemas nothing uses: {set(crd.schemas()) - used}"
