"""actionlint (with shellcheck on every `run:` script) and zizmor have nothing to say about the workflows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.github.workflows import ROOT, WORKFLOWS, require, workflows


def test_actionlint_reports_nothing() -> None:
    shellcheck = require("shellcheck")
    # actionlint skips the shell check silently when it finds no shellcheck: name it, and make sure it ran.
    result = subprocess.run(
        [str(require("actionlint")), "-shellcheck", str(shellcheck), "-pyflakes", "", *map(str, _files())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_actionlint_catches_what_it_is_here_for(tmp_path: Path) -> None:
    """The same call fails on a workflow with a shell error and an unknown context, so a pass means something."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo $UNQUOTED_VARIABLE ${{ githubb.sha }}\n"
    )
    result = subprocess.run(
        [str(require("actionlint")), "-shellcheck", str(require("shellcheck")), "-pyflakes", "", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SC2086" in result.stdout, "shellcheck did not run inside actionlint"
    assert "githubb" in result.stdout


def test_zizmor_reports_nothing_even_pedantic() -> None:
    """Offline audits (no GitHub API here); the pedantic persona includes every regular finding."""
    result = subprocess.run(
        [str(require("zizmor")), "--offline", "--persona=pedantic", "--no-progress", str(WORKFLOWS)],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr, result.stdout + result.stderr


def test_zizmor_catches_what_it_is_here_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  x:\n    name: x\n    runs-on: ubuntu-24.04\n"
        "    permissions: {}\n    steps:\n      - uses: actions/checkout@v4\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    result = subprocess.run(
        [str(require("zizmor")), "--offline", "--no-progress", str(bad)],
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for audit in ("unpinned-uses", "template-injection", "artipacked"):
        assert audit in output, f"zizmor did not report {audit}:\n{output}"


def _files() -> list[Path]:
    return [flow.path for flow in workflows()]
