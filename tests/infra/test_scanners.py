"""The static scanners that run offline: checkov (own virtualenv) with nothing failed and every skip
justified, trivy config clean of HIGH/CRITICAL, shellcheck on the scripts, yamllint on the YAML, and
terraform fmt where a terraform binary happens to be installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.terraform import INFRA, ROOT
from tests.tools import trivy_config, venv_tool

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"
YAMLLINT = ROOT / ".venv" / "bin" / "yamllint"


def require(tool: Path) -> Path:
    return venv_tool(tool.name)


@pytest.mark.slow  # checkov: its own virtualenv
def test_checkov_finds_nothing_and_every_skip_is_justified(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(require(CHECKOV)),
            "--skip-download",
            "--framework",
            "terraform",
            "-d",
            str(INFRA),
            "-o",
            "json",
            "--quiet",
        ],
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [check for item in reports for check in item["results"]["failed_checks"]]
    passed = sum(item["summary"]["passed"] for item in reports)
    assert not failed, [(check["check_id"], check["resource"], check["file_path"]) for check in failed]
    assert passed > 100, f"checkov passed only {passed} checks: is it scanning infra/?"
    assert result.returncode == 0, result.stderr[-2000:]

    for path in INFRA.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                assert re.search(r"#checkov:skip=CKV2?_[A-Z0-9]+_\d+:\S.{15,}", line), (
                    f"{path.name}: unjustified {line.strip()}"
                )


@pytest.mark.slow  # trivy, a scanner
def test_trivy_config_finds_no_high_or_critical(tmp_path: Path) -> None:
    report = trivy_config(INFRA, tmp_path / "cache")
    assert any(target.endswith(".tf") or target in (".", "addons", "bootstrap") for target in report.targets), (
        report.targets
    )
    assert not report.failures, report.failures
    assert report.returncode == 0, report.stderr[-2000:]


def shell_scripts() -> list[Path]:
    return sorted(path for path in INFRA.rglob("*.sh"))


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(INFRA)))
def test_shell_scripts_are_shellcheck_clean(script: Path) -> None:
    result = subprocess.run([str(require(SHELLCHECK)), str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_yaml_passes_the_projects_yamllint() -> None:
    files = sorted([*INFRA.rglob("*.yaml"), *INFRA.rglob("*.yml")])
    assert len(files) >= 10
    result = subprocess.run(
        [str(require(YAMLLINT)), "--strict", "-c", str(ROOT / ".yamllint.yaml"), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


# Not installable from the package registries this project uses: checked only where one is installed.
@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_fmt_is_clean(tmp_path: Path) -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-recursive", "-check", "-diff", str(INFRA)],
        env={**os.environ, "HOME": str(tmp_path), "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
