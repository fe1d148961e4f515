"""Rendered k8s/ output and the tools that read it, shared by the tests of tests/k8s/."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from app.config import Settings
from tests.tools import venv_tool

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
    return venv_tool(tool.name)


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


def gunicorn_settings(env: dict[str, str]) -> dict[str, Any]:
    """The settings app/gunicorn.conf.py computes from ``env``, read by running it as gunicorn would."""
    code = (
        "import json, os, runpy; ns = runpy.run_path('app/gunicorn.conf.py'); "
        "print(json.dumps({k: ns[k] for k in ('bind', 'workers', 'graceful_timeout', 'keepalive')} "
        "| {'multiproc': os.environ['PROMETHEUS_MULTIPROC_DIR']}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "PROMETHEUS_"))}
    clean = {k: v for k, v in clean.items() if k not in {"PORT", "HOST", "TMPDIR"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def mounted_file(workload: Doc, container_name: str, path: str) -> tuple[Doc, Doc, str]:
    """The volume mount of ``container_name`` that holds ``path``, its volume, and the path inside the volume."""
    item = container(workload, container_name)
    target = PurePosixPath(path)
    mounts = [m for m in item.get("volumeMounts", []) if target.is_relative_to(m["mountPath"])]
    assert mounts, f"{workload['metadata']['name']}/{container_name}: nothing is mounted at {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    return mount, volumes[mount["name"]], target.relative_to(mount["mountPath"]).as_posix()


# What the database URL looks like in the Secret External Secrets builds (tests/k8s/test_infra_outputs.py
# proves the template assembles one): the stand-in for the mounted file when settings are read here.
SAMPLE_DATABASE_URL = "postgresql://taskboard:p@db.invalid:5432/taskboard?sslmode=require"


def service_settings(docs: list[Doc]) -> Settings:
    """app.config.Settings as the service container would build them from the rendered manifests.

    Secret values are stand-ins (a long SECRET_KEY and fault token); the mounted database URL file is a
    temporary file holding a URL of the shape External Secrets writes.
    """
    workload = service_workload(docs)
    env = config_map_env(docs, workload, "taskboard")
    from_secrets = {
        v["name"] for v in container(workload, "taskboard").get("env", []) if "secretKeyRef" in v.get("valueFrom", {})
    }
    assert "SECRET_KEY" in from_secrets
    stand_ins = {"SECRET_KEY": "k" * 64, "FAULT_INJECTION_TOKEN": "t" * 32}
    env.update({k: v for k, v in stand_ins.items() if k in from_secrets})
    with tempfile.TemporaryDirectory() as directory:
        if "DATABASE_URL_FILE" in env:
            mounted_file(workload, "taskboard", env["DATABASE_URL_FILE"])  # it is mounted
            stand_in = Path(directory) / "DATABASE_URL"
            stand_in.write_text(SAMPLE_DATABASE_URL)
            env["DATABASE_URL_FILE"] = str(stand_in)
        return Settings.from_env(env)
