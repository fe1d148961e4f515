"""The SLO gate: its drills name real alerts, its arithmetic is right, and it fails a broken build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.slo_check import NotMeasured
from loadtest.slo_check.alertmanager import routed_receiver
from loadtest.slo_check.drills import alert_bound
from loadtest.slo_check.measure import quantile_from_buckets
from loadtest.slo_check.spec import load_drills, rule_index
from loadtest.slo_check.stack import running_stack
from local.stack import remove_state
from tests.conftest import ROOT


def test_every_expected_alert_exists_with_the_expected_severity() -> None:
    rules = rule_index()
    phases = load_drills()
    named = [e for phase in phases for e in phase.expect if e.alert]
    assert named, "the drills expect no named alert"
    for expectation in named:
        assert expectation.alert in rules
        assert rules[expectation.alert]["labels"]["severity"] == expectation.severity


def test_page_alerts_route_to_a_receiver_other_than_the_default() -> None:
    assert routed_receiver({"alertname": "TaskboardAvailabilityFastBurn", "severity": "page"}) == "oncall"
    assert routed_receiver({"alertname": "Anything", "severity": "ticket"}) == "chat"


@pytest.mark.parametrize(
    "text, message",
    [
        ("phases: [{name: a, seconds: 1}]", "exactly one phase must be the gate"),
        ("phases: [{name: a, seconds: 1, gate: true, start: reboot}]", "phase a: start must be one of"),
        ("phases: [{name: a, seconds: 1, gate: true, expect: [{state: firing}]}]", "needs an alert or a severity"),
        ("phases: [{name: a, seconds: 1, gate: true, expect: [{alert: X, state: maybe}]}]", "firing or silent"),
        ("phases: [{name: a, seconds: 1, gate: true, recover: soon}]", "recover must be"),
    ],
)
def test_bad_drills_files_name_the_phase_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "drills.yaml"
    path.write_text(text)
    with pytest.raises(NotMeasured, match=message):
        load_drills(path)


def test_alert_bound_counts_scrape_evaluations_and_for() -> None:
    assert alert_bound({}, "1s", "1s") == 1 + 2 + 0 + 1 + 5
    assert alert_bound({"for": "2m"}, "5s", "15s") == 5 + 30 + 120 + 1 + 5


def test_quantiles_interpolate_like_prometheus() -> None:
    # 100 requests: 50 under 0.1 s, 40 more under 0.3 s, 10 more under 1 s.
    buckets = {"0.1": 50.0, "0.3": 90.0, "1.0": 100.0, "+Inf": 100.0}
    assert quantile_from_buckets(0.5, buckets) == pytest.approx(0.1)
    assert quantile_from_buckets(0.7, buckets) == pytest.approx(0.2)
    assert quantile_from_buckets(0.95, buckets) == pytest.approx(0.65)
    assert quantile_from_buckets(0.99, {"0.1": 0.0, "+Inf": 10.0}) == pytest.approx(0.1)
    assert quantile_from_buckets(0.5, {"0.1": 0.0, "+Inf": 0.0}) is None


def test_no_running_stack_means_a_fresh_one(tmp_path: Path) -> None:
    assert running_stack(tmp_path) is None
    (tmp_path / "stack.json").write_text(
        json.dumps({"app_url": "http://127.0.0.1:1", "prometheus_url": "http://127.0.0.1:1", "fault_token_file": "x"})
    )
    assert running_stack(tmp_path) is None  # nothing answers there


def test_the_gate_fails_a_build_that_left_fault_injection_on(tmp_path: Path) -> None:
    out = tmp_path / "report"
    try:
        result = subprocess.run(
            [
                sys.executable, "-m", "loadtest.slo_check", "--no-drills", "--steady", "20",
                "--faults", json.dumps({"*": {"error_ratio": 0.05}}),
                "--out", str(out), "--state-dir", str(tmp_path / "stack"),
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    finally:
        remove_state(tmp_path / "stack")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "summary.json").read_text())
    verdicts = {v["slo"]: v for v in report["gate"]["verdicts"]}
    assert verdicts["availability"]["passed"] is False
    assert 0.85 < verdicts["availability"]["measured"] < 0.99  # about 5 % injected errors
    assert report["gate"]["slis"]["errors"] > 0
    assert "FAILED" in (out / "summary.md").read_text()
    for chart in ("throughput.png", "errors.png", "latency.png"):
        assert (out / chart).stat().st_size > 10_000
    assert (out / "locust_stats.csv").exists() and (out / "locust.html").exists()
