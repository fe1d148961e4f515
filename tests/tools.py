"""The tools the tests run, found in one way: the project's virtualenvs, or PATH for Debian packages.

A missing tool fails the test with how to get it, never a skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
CHECKOV_BIN = ROOT / ".venv-checkov" / "bin"


def venv_tool(name: str) -> Path:
    """``name`` from .venv/bin, or .venv-checkov/bin for checkov (its own virtualenv)."""
    tool = (CHECKOV_BIN if name == "checkov" else VENV_BIN) / name
    source = "the checkov virtualenv (.venv-checkov)" if name == "checkov" else "tests/requirements.txt"
    assert tool.exists(), f"{tool.relative_to(ROOT)} is missing: `make deps-test` installs it ({source})"
    return tool


def debian_tool(name: str, package: str) -> str:
    """``name`` from PATH, installed by the Debian ``package``."""
    path = shutil.which(name)
    assert path is not None, f"{name} not found: install the Debian package {package} (`make test` does)"
    return path


@dataclass(frozen=True)
class TrivyReport:
    results: list[dict[str, Any]]
    failures: list[tuple[str, str, str]]  # (target, check id, title)
    returncode: int
    stderr: str

    @property
    def targets(self) -> set[str]:
        return {item["Target"] for item in self.results}


def trivy_config(target: Path, cache_dir: Path) -> TrivyReport:
    """``trivy config`` on ``target``, offline, HIGH and CRITICAL only."""
    result = subprocess.run(
        [
            str(venv_tool("trivy")), "config", "--skip-check-update", "--skip-version-check", "--disable-telemetry",
            "--cache-dir", str(cache_dir), "--exit-code", "1", "--severity", "HIGH,CRITICAL",
            "--format", "json", str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    results: list[dict[str, Any]] = json.loads(result.stdout).get("Results", [])
    failures = [
        (item["Target"], finding["ID"], finding["Title"])
        for item in results
        for finding in item.get("Misconfigurations", []) or []
        if finding.get("Status", "FAIL") == "FAIL"
    ]
    return TrivyReport(results, failures, result.returncode, result.stderr)
