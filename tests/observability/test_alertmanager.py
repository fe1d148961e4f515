"""Alertmanager routing as code: amtool-clean, one route test per alert, no secret in the file, and the
local stack running this very routing tree (offline) with inhibition working for real."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from local.monitoring import alertmanager_config, offline_routing
from observability import generate
from observability.paths import ALERTMANAGER_ROUTING
from tests.observability.live import Live, alertmanager_status, post_alerts
from tests.observability.tools import amtool

CONFIG = ALERTMANAGER_ROUTING
# The routing this file promises: severity → receiver.
EXPECTED_RECEIVER = {"page": "oncall", "ticket": "chat"}
HEARTBEAT_RECEIVER = "null"


def load() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text())
    return config


def route_test(config: Path, receiver: str, labels: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            amtool(),
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            f"--verify.receivers={receiver}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def alerts() -> list[tuple[str, str]]:
    return [(a.name, a.severity) for rule_file, _ in generate.rule_files() for a in rule_file.alerts]


# One Alertmanager matcher: label, operator, double-quoted value (the form this file uses).
_MATCHER = re.compile(r'(\w+)(=~|!~|!=|=)"((?:[^"\\]|\\.)*)"')
# The labels an alert carries from its rule, whatever series fire it.
_RULE_LABELS = ("alertname", "severity")


def _holds(matcher: str, labels: dict[str, str]) -> bool | None:
    """Whether ``matcher`` holds for ``labels``; None when it names a label the rules do not set."""
    parsed = _MATCHER.fullmatch(matcher)
    assert parsed, f"{matcher!r} is not a matcher this test can read"
    name, op, value = parsed.groups()
    if name not in _RULE_LABELS:
        return None
    given = labels[name]
    if op in ("=", "!="):
        return (given == value) == (op == "=")
    return bool(re.fullmatch(value, given)) == (op == "=~")  # Alertmanager anchors its regular expressions


@pytest.mark.slow  # amtool: Debian package prometheus-alertmanager
def test_amtool_check_config_is_clean() -> None:
    result = subprocess.run([amtool(), "check-config", str(CONFIG)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.slow  # amtool: Debian package prometheus-alertmanager
@pytest.mark.parametrize(("alertname", "severity"), alerts(), ids=[name for name, _ in alerts()])
def test_each_alert_reaches_the_receiver_its_severity_promises(alertname: str, severity: str) -> None:
    expected = HEARTBEAT_RECEIVER if alertname == "Watchdog" else EXPECTED_RECEIVER[severity]
    labels = {"alertname": alertname, "severity": severity, "namespace": "prod"}
    result = route_test(CONFIG, expected, labels)
    assert result.returncode == 0, f"{alertname} ({severity}) → {result.stdout.strip()}, expected {expected}"


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "SomethingNew"}, "chat"),  # no severity: still reaches people
        ({"alertname": "SomethingNew", "severity": "info"}, "chat"),
        ({"alertname": "Watchdog", "severity": "page"}, "null"),  # the heartbeat never pages
    ],
)
@pytest.mark.slow  # amtool: Debian package prometheus-alertmanager
def test_unusual_labels_still_route_somewhere_sensible(labels: dict[str, str], receiver: str) -> None:
    result = route_test(CONFIG, receiver, labels)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow  # amtool: Debian package prometheus-alertmanager
def test_a_page_route_test_that_expects_chat_fails() -> None:
    """amtool's verification really checks (a wrong expectation fails)."""
    assert route_test(CONFIG, "chat", {"alertname": "X", "severity": "page"}).returncode != 0


def test_secrets_come_only_from_files() -> None:
    text = CONFIG.read_text()
    for key in ("api_url", "routing_key", "service_key", "auth_password", "bearer_token", "password"):
        assert not re.search(rf"^\s*{key}:", text, re.MULTILINE), f"{key} must be read from a file ({key}_file)"
    files = re.findall(r"_file:\s*(\S+)", text)
    assert files and all(f.startswith("/etc/alertmanager/secrets/") for f in files)
    for receiver in load()["receivers"]:
        assert not re.search(r"https?://", yaml.safe_dump(receiver)), receiver["name"]


def test_every_severity_in_the_rules_has_a_route() -> None:
    routed = {m for route in load()["route"]["routes"] for m in route["matchers"]}
    for severity in {s for _, s in alerts()} - {"none"}:
        assert f'severity="{severity}"' in routed


def test_every_inhibition_rule_matches_alerts_the_rules_define() -> None:
    """Each side of each inhibition rule selects by alert name or severity, and some alert has them."""
    defined = [{"alertname": name, "severity": severity} for name, severity in alerts()]
    rules = load()["inhibit_rules"]
    assert rules
    for rule in rules:
        for side in ("source_matchers", "target_matchers"):
            checkable = [m for m in rule[side] if _holds(m, defined[0]) is not None]
            assert checkable, f"{side} {rule[side]}: nothing this test can check against the rules"
            matched = [a["alertname"] for a in defined if all(_holds(m, a) for m in checkable)]
            assert matched, f"{side} {rule[side]} matches no alert the rules define"


@pytest.mark.slow  # amtool: Debian package prometheus-alertmanager
def test_the_local_stack_uses_this_routing_without_integrations(tmp_path: Path) -> None:
    repo, local = load(), alertmanager_config()
    assert local["route"] == repo["route"]
    assert local["inhibit_rules"] == repo["inhibit_rules"]
    assert [r["name"] for r in local["receivers"]] == [r["name"] for r in repo["receivers"]]
    assert all(set(r) == {"name"} for r in local["receivers"])
    assert "_file" not in yaml.safe_dump(local)
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(yaml.safe_dump(local, sort_keys=False))
    result = subprocess.run([amtool(), "check-config", str(rendered)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert route_test(rendered, "oncall", {"alertname": "X", "severity": "page"}).returncode == 0


def test_offline_routing_drops_integration_settings() -> None:
    config = {
        "global": {"resolve_timeout": "5m", "slack_api_url_file": "/x", "smtp_smarthost": "mail:25"},
        "templates": ["/etc/alertmanager/*.tmpl"],
        "route": {"receiver": "a"},
        "receivers": [{"name": "a", "webhook_configs": [{"url": "http://x"}]}],
    }
    assert offline_routing(config) == {
        "route": {"receiver": "a"},
        "global": {"resolve_timeout": "5m"},
        "receivers": [{"name": "a"}],
    }


# -- the running Alertmanager of the local stack -----------------------------------------------


def _alert(name: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, "severity": severity, "namespace": "am-test", **labels}}


def _status_of(url: str, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = requests.get(
            f"{url}/api/v2/alerts", params={"filter": [f'alertname="{name}"', 'namespace="am-test"']}, timeout=10
        ).json()
        if found:
            status: dict[str, Any] = found[0]["status"]
            return status
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached Alertmanager")


def _states(loaded: Any, written: Any) -> bool:
    """Whether ``loaded`` says all that ``written`` says (Alertmanager adds its defaults, e.g. continue: false)."""
    if isinstance(written, dict):
        return isinstance(loaded, dict) and all(k in loaded and _states(loaded[k], v) for k, v in written.items())
    if isinstance(written, list):
        return isinstance(loaded, list) and len(loaded) == len(written) and all(map(_states, loaded, written))
    return bool(loaded == written)


def test_live_alertmanager_loaded_the_repository_routing(live: Live) -> None:
    original = yaml.safe_load(alertmanager_status(live.alertmanager_url)["config"]["original"])
    assert _states(original["route"], load()["route"]), original["route"]
    assert _states(original["inhibit_rules"], load()["inhibit_rules"]), original["inhibit_rules"]
    assert [r["name"] for r in original["receivers"]] == [r["name"] for r in load()["receivers"]]


def test_live_alertmanager_routes_by_severity(live: Live) -> None:
    url = live.alertmanager_url
    post_alerts(url, [_alert("AmTestPage", "page"), _alert("AmTestTicket", "ticket")])
    _status_of(url, "AmTestTicket")
    groups = requests.get(f"{url}/api/v2/alerts/groups", params={"filter": 'namespace="am-test"'}, timeout=10).json()
    receivers = {g["alerts"][0]["labels"]["alertname"]: g["receiver"]["name"] for g in groups}
    assert receivers == {"AmTestPage": "oncall", "AmTestTicket": "chat"}


def test_live_alertmanager_inhibits_the_ticket_of_a_paging_slo(live: Live) -> None:
    url = live.alertmanager_url
    post_alerts(
        url,
        [
            _alert("AmTestBurnPage", "page", sloth_id="am-test-availability"),
            _alert("AmTestBurnTicket", "ticket", sloth_id="am-test-availability"),
            _alert("AmTestOtherSloTicket", "ticket", sloth_id="am-test-latency"),
            _alert("AmTestPlainTicket", "ticket"),
        ],
    )
    assert _status_of(url, "AmTestBurnTicket")["inhibitedBy"], "a page must inhibit the ticket of the same SLO"
    assert not _status_of(url, "AmTestOtherSloTicket")["inhibitedBy"], "another SLO's ticket stays"
    assert not _status_of(url, "AmTestPlainTicket")["inhibitedBy"], "alerts without an SLO are not inhibited"
    assert not _status_of(url, "AmTestBurnPage")["inhibitedBy"]


def test_live_prometheus_alerts_reach_alertmanager(live: Live) -> None:
    """The burn-rate page from the drill and the Watchdog arrive through the real path.

    The Watchdog fires at the first evaluation, before Prometheus's notifier has discovered Alertmanager,
    so its first notification is dropped; Prometheus re-sends firing alerts every minute
    (--rules.alert.resend-delay), hence the longer wait for it.
    """
    for name, receiver, wait in (("TaskboardAvailabilityFastBurn", "oncall", 30), ("Watchdog", "null", 90)):
        deadline = time.monotonic() + wait
        while True:
            groups = requests.get(
                f"{live.alertmanager_url}/api/v2/alerts/groups", params={"filter": f'alertname="{name}"'}, timeout=10
            ).json()
            if groups or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert [g["receiver"]["name"] for g in groups] == [receiver], name
