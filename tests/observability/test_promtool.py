"""`promtool test rules` on every test file, and proof that every alert has a firing and a silent case."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from observability import generate
from observability.links import runbook_base_url
from observability.paths import RULES_DIR
from tests.observability.tools import promtool

TEST_DIR = Path(__file__).resolve().parent / "promtool"
TEST_FILES = sorted(TEST_DIR.glob("*_test.yml"))
# Alerts that cannot have a silent case, and why: the Watchdog is vector(1) by design; its test shows
# it firing with no input at all and still firing a day later.
ALWAYS_FIRING = {"Watchdog"}
# The expected runbook_url annotations name the repository through this token, replaced before promtool
# runs by the base URL the rules are generated with (the repository of infra/cluster.yaml): a fork that
# changes the repository changes no test file.
RUNBOOK_TOKEN = "$RUNBOOK_BASE_URL"


def _with_runbook_base_url(path: Path, directory: Path) -> Path:
    """A copy of the test file in ``directory``: the token replaced, the rule files' paths made absolute."""
    text = path.read_text().replace(RUNBOOK_TOKEN, runbook_base_url())
    for rule_file in yaml.safe_load(path.read_text())["rule_files"]:
        text = text.replace(f"  - {rule_file}\n", f"  - {(TEST_DIR / rule_file).resolve()}\n")
    copy = directory / path.name
    copy.write_text(text)
    return copy


@pytest.mark.slow  # promtool: Debian package prometheus
@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path, tmp_path: Path) -> None:
    copy = _with_runbook_base_url(path, tmp_path)
    result = subprocess.run(
        [promtool(), "test", "rules", copy.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_expected_runbook_urls_follow_the_repository_not_a_literal() -> None:
    for path in TEST_FILES:
        expected = [
            case for test in yaml.safe_load(path.read_text())["tests"] for case in test.get("alert_rule_test", [])
        ]
        urls = [
            alert["exp_annotations"]["runbook_url"]
            for case in expected
            for alert in case.get("exp_alerts") or []
            if "runbook_url" in alert.get("exp_annotations", {})
        ]
        assert all(url.startswith(f"{RUNBOOK_TOKEN}/") for url in urls), f"{path.name}: {urls}"
        assert "github.com" not in path.read_text(), f"{path.name} names a repository"


def test_every_test_file_loads_only_generated_rule_files() -> None:
    generated = {(RULES_DIR / f.filename).resolve() for f, _ in generate.rule_files()}
    for path in TEST_FILES:
        for rule_file in yaml.safe_load(path.read_text())["rule_files"]:
            assert (TEST_DIR / rule_file).resolve() in generated, f"{path.name}: {rule_file}"


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    cases: dict[str, set[str]] = defaultdict(set)
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases[case["alertname"]].add("fires" if case.get("exp_alerts") else "silent")
    alerts = {alert.name for rule_file, _ in generate.rule_files() for alert in rule_file.alerts}
    missing = {
        name: sorted({"fires", "silent"} - cases[name] - ({"silent"} if name in ALWAYS_FIRING else set()))
        for name in alerts
    }
    assert {name: gaps for name, gaps in missing.items() if gaps} == {}
    assert set(cases) <= alerts, f"tests for alerts that do not exist: {sorted(set(cases) - alerts)}"
