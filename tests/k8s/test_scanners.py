"""checkov (kustomize and kubernetes frameworks) with nothing failed and every skip justified on the
resource, trivy config clean of HIGH and CRITICAL, yamllint clean.

The kubernetes framework and trivy read the RENDERED kustomizations (what is applied) plus k8s/argocd/:
the overlays' patch files are fragments, not manifests, and would only produce noise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.manifests import CHECKOV, K8S, ROOT, TARGETS, VENV_BIN, rendered_text, require
from tests.tools import trivy_config


def _rendered_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "rendered"
    tree.mkdir()
    for target in TARGETS:
        (tree / f"{target.replace('/', '-')}.yaml").write_text(rendered_text(target))
    shutil.copytree(K8S / "argocd", tree / "argocd")
    return tree


def _checkov(framework: str, directory: Path, tmp_path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(require(CHECKOV)), "--skip-download", "--framework", framework, "-d", str(directory), "-o", "json"],
        # checkov's kustomize framework runs `kubectl kustomize` from PATH: the one in .venv/bin.
        env={
            **os.environ,
            "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
            "HOME": str(tmp_path),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    report = json.loads(result.stdout)
    reports: list[dict[str, Any]] = report if isinstance(report, list) else [report]
    failed = [check for item in reports for check in item["results"]["failed_checks"]]
    assert not failed, [(c["check_id"], c["resource"], c["file_path"]) for c in failed]
    assert result.returncode == 0, result.stderr[-2000:]
    return reports


def _assert_skips_are_justified(reports: list[dict[str, Any]]) -> int:
    skipped = [check for item in reports for check in item["results"]["skipped_checks"]]
    for check in skipped:
        reason = check.get("check_result", {}).get("suppress_comment", "")
        assert len(reason) >= 30, f"{check['check_id']} on {check['resource']} is skipped without a reason: {reason!r}"
    return len(skipped)


@pytest.mark.slow  # checkov: its own virtualenv
def test_checkov_kustomize_finds_nothing(tmp_path: Path) -> None:
    reports = _checkov("kustomize", K8S, tmp_path)
    passed = sum(item["summary"]["passed"] for item in reports)
    assert passed > 500, f"checkov passed only {passed} checks: is it rendering k8s/?"
    _assert_skips_are_justified(reports)


@pytest.mark.slow  # checkov: its own virtualenv
def test_checkov_kubernetes_finds_nothing_in_the_rendered_manifests(tmp_path: Path) -> None:
    reports = _checkov("kubernetes", _rendered_tree(tmp_path), tmp_path)
    passed = sum(item["summary"]["passed"] for item in reports)
    assert passed > 500, f"checkov passed only {passed} checks"
    assert _assert_skips_are_justified(reports) > 0


@pytest.mark.slow  # trivy, a scanner
def test_trivy_config_finds_no_high_or_critical(tmp_path: Path) -> None:
    tree = _rendered_tree(tmp_path)
    report = trivy_config(tree, tmp_path / "cache")
    results = report.results
    assert not report.failures, report.failures
    assert report.returncode == 0, report.stderr[-2000:]
    scanned = {item["Target"] for item in results}
    assert {f"{t.replace('/', '-')}.yaml" for t in TARGETS} <= scanned, f"trivy scanned only {sorted(scanned)}"


def test_yamllint_accepts_k8s_and_the_compose_files() -> None:
    yamllint = require(VENV_BIN / "yamllint")
    paths = [str(K8S), str(ROOT / "compose.yaml"), str(ROOT / ".compose")]
    result = subprocess.run([str(yamllint), "--strict", *paths], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
