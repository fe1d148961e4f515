"""The SLO file and the generator: references resolve, bad files are refused, output is stable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from app import endpoints
from app import metric_names as names
from observability import promql, slo_rules
from observability.paths import RULES_DIR, SLO_FILE
from observability.slo import spec as slo_spec
from observability.slo.spec import AvailabilitySLI, LatencySLI, SLOError

SPEC_FILE = SLO_FILE


@pytest.fixture
def spec() -> slo_spec.ServiceSLOs:
    return slo_spec.load(SPEC_FILE)


def write_variant(tmp_path: Path, change: str, to: str) -> Path:
    text = SPEC_FILE.read_text()
    assert change in text, change
    path = tmp_path / SPEC_FILE.name
    path.write_text(text.replace(change, to, 1))
    return path


def test_the_slo_file_resolves_against_the_service(spec: slo_spec.ServiceSLOs) -> None:
    assert spec.service == endpoints.SERVICE_NAME
    # Operational paths and the drill endpoint are never user traffic.
    assert set(endpoints.OPERATIONAL_PATHS) <= set(spec.excluded_routes)
    assert endpoints.ADMIN_FAULTS in spec.excluded_routes
    kinds = {type(slo.sli) for slo in spec.slos}
    assert kinds == {AvailabilitySLI, LatencySLI}
    for slo in spec.slos:
        if isinstance(slo.sli, LatencySLI):
            assert slo.sli.threshold_seconds in names.REQUEST_DURATION_BUCKETS
            assert slo.sli.metric is names.HTTP_REQUEST_DURATION
        else:
            assert slo.sli.metric is names.HTTP_REQUESTS


def test_windows_are_the_multiwindow_set(spec: slo_spec.ServiceSLOs) -> None:
    assert spec.windows == ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
    pairs = {(a.severity, str(a.burn_rate), a.long_window, a.short_window) for a in spec.burn_rate_alerts}
    assert pairs == {
        ("page", "14.4", "1h", "5m"),
        ("page", "6", "6h", "30m"),
        ("ticket", "3", "1d", "2h"),
        ("ticket", "1", "3d", "6h"),
    }


@pytest.mark.parametrize(
    ("change", "to", "message"),
    [
        ("threshold_seconds: 0.3", "threshold_seconds: 0.25", "not a bucket bound"),
        ("service: taskboard", "service: billing", "app.endpoints.SERVICE_NAME"),
        ("app.endpoints.ADMIN_FAULTS", "app.endpoints.NO_SUCH_PATH", "has no NO_SUCH_PATH"),
        ("app.endpoints.ADMIN_FAULTS", "os.environ", "must name a value in"),
        ("metric: app.metric_names.HTTP_REQUESTS", "metric: app.metric_names.DB_ERRORS", "status"),
        ("objective: 99.9", "objective: 100", "strictly between 0 and 100"),
        ("short_window: 5m", "short_window: 2h", "shorter than long_window"),
        ("severity: page", "severity: urgent", "severity"),
    ],
)
def test_a_wrong_slo_file_is_refused_with_its_reason(tmp_path: Path, change: str, to: str, message: str) -> None:
    with pytest.raises(SLOError, match=re.escape(message)):
        slo_spec.load(write_variant(tmp_path, change, to))


@pytest.mark.parametrize(
    ("bound", "matches", "rejects"),
    [
        (0.3, ["0.3", "0.30", "0.300"], ["0.03", "0.35", "3", "10.3", "0x3"]),
        (1.0, ["1", "1.0", "1.00"], ["10", "1.5", "0.1", "11"]),
        (2.5, ["2.5", "2.50"], ["2.05", "25", "2.55"]),
        (0.005, ["0.005", "0.0050"], ["0.05", "0.0005"]),
    ],
)
def test_le_pattern_matches_every_spelling_of_a_bound(bound: float, matches: list[str], rejects: list[str]) -> None:
    pattern = re.compile(promql.le_pattern(bound))
    assert all(pattern.fullmatch(text) for text in matches)
    assert not any(pattern.fullmatch(text) for text in rejects)


def test_recording_rules_cover_every_window_for_every_slo(spec: slo_spec.ServiceSLOs) -> None:
    rule_file = yaml.safe_load((RULES_DIR / f"{spec.service}-slo.yml").read_text())
    records = {
        (rule["labels"]["sloth_slo"], rule["labels"].get("sloth_window"), rule["record"])
        for group in rule_file["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    for slo in spec.slos:
        for window in spec.windows:
            assert (slo.name, window, slo_rules.sli_record(window)) in records
        for meta in (slo_rules.OBJECTIVE, slo_rules.ERROR_BUDGET, slo_rules.BUDGET_REMAINING):
            assert any(name == slo.name and record == meta for name, _, record in records)


def test_every_latency_sli_matches_the_bucket_whatever_its_spelling(spec: slo_spec.ServiceSLOs) -> None:
    text = (RULES_DIR / f"{spec.service}-slo.yml").read_text()
    latency = [slo.sli for slo in spec.slos if isinstance(slo.sli, LatencySLI)]
    assert latency and spec.alert_windows
    for sli in latency:
        matcher = f"le=~{promql.quote(promql.le_pattern(sli.threshold_seconds))}"
        assert text.count(matcher) == len(spec.alert_windows)
