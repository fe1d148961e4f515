"""What the internet-facing Ingress routes: every path users need, and none of the operational ones.

Scraping and probes stay in-cluster (the ALB's health check reaches the pods' port directly, not
through the listener's rules), so /metrics, /readyz, /healthz and the dev-only fault endpoint must
not be reachable through the ALB. The paths come from app/endpoints.py and from the app's own URL map.
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from flask import Flask

from app import create_app, endpoints
from tests.conftest import FAULT_TOKEN, app_config
from tests.k8s.manifests import TARGETS, Doc, find, render

NOT_PUBLIC = (*endpoints.OPERATIONAL_PATHS, endpoints.ADMIN_FAULTS)
INGRESS_TARGETS = [target for target in TARGETS if find(render(target), "Ingress")]


@cache
def _app() -> Flask:
    # Fault injection on, so that its route exists and is checked like the others; nothing connects.
    config = app_config(
        "postgresql://nobody@127.0.0.1:1/nothing", FAULT_INJECTION_ENABLED="true", FAULT_INJECTION_TOKEN=FAULT_TOKEN
    )
    return create_app(config)


def user_paths() -> list[str]:
    """One concrete path per route of the app that is not operational (``<id:task_id>`` → ``1``,
    ``<path:filename>`` → ``style.css``)."""
    paths = set()
    for rule in _app().url_map.iter_rules():
        if rule.rule in NOT_PUBLIC:
            continue
        paths.add(re.sub(r"<[^>]+>", "1", re.sub(r"<path:[^>]+>", "style.css", rule.rule)))
    return sorted(paths)


def _routes(path: str, rule: Doc) -> bool:
    """Whether an Ingress path rule takes ``path``, by Kubernetes' rules: Exact is equality, Prefix
    matches whole path elements ("/api/v1" takes /api/v1 and /api/v1/tasks, not /api/v1x)."""
    if rule["pathType"] == "Exact":
        return path == rule["path"]
    assert rule["pathType"] == "Prefix", f"{rule['path']}: pathType {rule['pathType']} is implementation-specific"
    prefix = [part for part in rule["path"].split("/") if part]
    return [part for part in path.split("/") if part][: len(prefix)] == prefix


def _rules(target: str) -> list[Doc]:
    return [
        rule
        for ingress in find(render(target), "Ingress")
        for host in ingress["spec"]["rules"]
        for rule in host["http"]["paths"]
    ]


def test_the_app_has_the_routes_this_test_reasons_about() -> None:
    paths = user_paths()
    assert "/" in paths and f"{endpoints.API_PREFIX}/tasks/1" in paths and "/static/style.css" in paths
    assert endpoints.ADMIN_FAULTS not in paths


@pytest.mark.parametrize("target", INGRESS_TARGETS)
def test_the_ingress_routes_none_of_the_operational_paths(target: str) -> None:
    rules = _rules(target)
    for path in NOT_PUBLIC:
        for probe in (path, f"{path}/", f"{path}/anything"):
            routed = [rule["path"] for rule in rules if _routes(probe, rule)]
            assert not routed, f"{target}: {probe} is public through {routed}"


@pytest.mark.parametrize("target", INGRESS_TARGETS)
def test_the_ingress_routes_every_path_users_need(target: str) -> None:
    rules = _rules(target)
    for path in user_paths():
        assert any(_routes(path, rule) for rule in rules), f"{target}: {path} is not routed"
