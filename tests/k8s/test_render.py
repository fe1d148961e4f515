"""Every kustomization renders with kubectl's kustomize, and every built-in object passes
``kubernetes-validate --strict`` for the cluster's Kubernetes version; nothing is left unvalidated."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.k8s import crd
from tests.k8s.manifests import (
    KUBERNETES_VALIDATE,
    KUBERNETES_VERSION,
    TARGETS,
    Doc,
    argocd,
    one,
    render,
    rendered_text,
    require,
)


def _validate_cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(require(KUBERNETES_VALIDATE)), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _has_builtin_schema(doc: Doc) -> bool:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    return True


@pytest.mark.parametrize("target", TARGETS)
def test_kustomization_renders(target: str) -> None:
    docs = render(target)
    assert len(docs) >= 5, f"k8s/{target} rendered only {len(docs)} objects"
    names = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), f"k8s/{target} renders an object twice"


@pytest.mark.parametrize("target", TARGETS)
def test_builtin_kinds_pass_kubernetes_validate_strict(target: str, tmp_path: Path) -> None:
    path = tmp_path / "rendered.yaml"
    path.write_text(rendered_text(target))
    result = _validate_cli(path)
    failures = [line for line in result.stdout.splitlines() + result.stderr.splitlines() if "ERROR" in line]
    assert result.returncode == 0 and not failures, result.stdout[-3000:] + result.stderr[-3000:]


def test_kubernetes_validate_strict_refuses_what_kubernetes_would(tmp_path: Path) -> None:
    """The validator really validates: a misspelt field and a wrong type each fail."""
    deployment = one(render("base"), "Deployment", "taskboard")
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "fifty"
    for bad in (misspelt, wrong_type):
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        result = _validate_cli(path)
        assert result.returncode != 0, f"kubernetes-validate accepted {path.read_text()[:200]}"


def test_rollout_pod_template_passes_the_builtin_pod_schema() -> None:
    """The Rollout CRD's copy of the pod schema may lag Kubernetes: check its template as a Deployment's too."""
    rollout = one(render("overlays/prod"), "Rollout", "taskboard")
    as_deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": rollout["metadata"]["name"]},
        "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]},
    }
    kubernetes_validate.validate(as_deployment, KUBERNETES_VERSION, strict=True)


def test_every_object_is_validated_by_one_schema_or_the_other() -> None:
    """No kind slips through: built-in kinds have a Kubernetes schema, the rest a stored CRD schema."""
    docs = [d for target in TARGETS for d in render(target)] + argocd()
    unvalidated = sorted(
        {
            f"{d['apiVersion']} {d['kind']}"
            for d in docs
            if (d["apiVersion"], d["kind"]) not in crd.schemas() and not _has_builtin_schema(d)
        }
    )
    assert not unvalidated, f"no schema validates these kinds: {unvalidated}"
