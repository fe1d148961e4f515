"""Rendered k8s/ output and the tools that read it, shared by the tests of tests/k8s/."""

from __future__ import annotations

import copy
import functools
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
K8S = ROOT / "k8s"
VENV_BIN = ROOT / ".venv" / "bin"
KUBECTL = VENV_BIN / "kubectl"
KUBERNETES_VALIDATE = VENV_BIN / "kubernetes-validate"
TRIVY = VENV_BIN / "trivy"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
KUBERNETES_VERSION = "1.35"

ENVIRONMENTS = ("dev", "uat", "prod")
# Every kustomization that is deployed (or applied by hand) on its own.
TARGETS = ("base", "overlays/dev", "overlays/uat", "overlays/prod", "loadgen")
WORKLOAD_KINDS = ("Deployment", "Rollout", "Job", "StatefulSet", "DaemonSet")
LONG_RUNNING_KINDS = ("Deployment", "Rollout", "StatefulSet", "DaemonSet")

Doc = dict[str, Any]


def require(tool: Path) -> Path:
    """``tool``, or a failure that says how to get it."""
    installer = "the checkov virtualenv (.venv-checkov)" if "checkov" in tool.name else "tests/requirements.txt"
    assert tool.exists(), f"{tool.relative_to(ROOT)} is missing: `make deps-test` installs it ({installer})"
    return tool


def kustomize(path: Path) -> str:
    """``kubectl kustomize path`` (kustomize's default load restrictions, as Argo CD builds)."""
    result = subprocess.run(
        [str(require(KUBECTL)), "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {path}: {result.stderr.strip()}"
    return result.stdout


@functools.cache
def rendered_text(target: str) -> str:
    return kustomize(K8S / target)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str) -> list[Doc]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]


@functools.cache
def _rendered(target: str) -> list[Doc]:
    return parse(rendered_text(target))


def render(target: str) -> list[Doc]:
    """The objects ``kubectl kustomize k8s/<target>`` prints (a fresh copy each call)."""
    return copy.deepcopy(_rendered(target))


def argocd() -> list[Doc]:
    """k8s/argocd/: plain manifests, read file by file as Argo CD's directory source does."""
    return [doc for path in sorted((K8S / "argocd").glob("*.yaml")) for doc in parse(path.read_text())]


def overlay(env: str) -> list[Doc]:
    return render(f"overlays/{env}")


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    return (d for d in docs if d["kind"] in WORKLOAD_KINDS)


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def service_workload(docs: list[Doc]) -> Doc:
    """The task board's own Deployment, or the Rollout it becomes in prod."""
    found = [d for d in docs if d["kind"] in ("Deployment", "Rollout") and d["metadata"]["name"] == "taskboard"]
    assert len(found) == 1, f"expected the taskboard Deployment or Rollout, found {len(found)}"
    return found[0]


def container(doc: Doc, name: str) -> Doc:
    for item in containers(doc):
        if item["name"] == name:
            return item
    raise AssertionError(f"{doc['kind']} {doc['metadata']['name']} has no container {name}")


def config_map_env(docs: list[Doc], workload: Doc, container_name: str) -> dict[str, str]:
    """The environment a container starts with: its envFrom ConfigMaps, then its literal env values.

    Values from Secrets and the downward API are left out; $(VAR) references are expanded as the
    kubelet does.
    """
    item = container(workload, container_name)
    env: dict[str, str] = {}
    for source in item.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"{container_name}: only ConfigMaps are expected in envFrom, got {source}"
        env.update(one(docs, "ConfigMap", ref["name"])["data"])
    for var in item.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m[1], m[0]), var["value"])
    return env


def cluster() -> Doc:
    data: Doc = yaml.safe_load((ROOT / "infra" / "cluster.yaml").read_text())
    return data


def env_file(path: Path) -> dict[str, str]:
    """A KEY=value file as kustomize reads it (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=value: {line!r}"
        assert key not in values, f"{path.name}: {key} twice"
        values[key] = value
    return values
