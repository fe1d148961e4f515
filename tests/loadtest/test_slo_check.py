"""The SLO gate: its drills name real alerts, its arithmetic is right, and its exit code tells a failing
change (1) from a gate that could not measure (2) from a pass (0).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from app import endpoints
from loadtest.slo_check import NotMeasured, gate, verdict
from loadtest.slo_check.__main__ import main
from loadtest.slo_check.alertmanager import Alertmanager, Held, routed_receiver
from loadtest.slo_check.drills import Drill, alert_bound
from loadtest.slo_check.load import Load
from loadtest.slo_check.measure import quantile_from_buckets
from loadtest.slo_check.prometheus import Prometheus, Sample
from loadtest.slo_check.settings import parse
from loadtest.slo_check.spec import Expectation, Phase, load_drills, rule_index
from loadtest.slo_check.stack import Target, one_line, running_stack
from local.stack import remove_state
from tests.conftest import ROOT

PREFIX = "make slo-check: could not measure: "

# -- a stand-in server: fixed answers by path --------------------------------------------------


class _Answers(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, str]] = {}  # noqa: RUF012 - set per server by `serving`

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.answers.get(urlsplit(self.path).path, (404, "not here"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # Locust drops connections when it stops: not the test's concern


@contextmanager
def serving(answers: Mapping[str, tuple[int, str]]) -> Iterator[str]:
    """A server on a free port answering ``path → (status, body)``, 404 otherwise; its URL."""
    handler = type("Handler", (_Answers,), {"answers": dict(answers)})
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


UP = {endpoints.HEALTHZ: (200, "ok"), endpoints.READYZ: (200, "ok"), "/-/ready": (200, "ok")}


def _stack_json(state_dir: Path, url: str) -> None:
    """The state `make run` leaves, pointing every part at ``url``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "fault_token").write_text("token-0123456789abcdef\n")
    state = {
        "app_url": url,
        "prometheus_url": url,
        "alertmanager_url": url,
        "scrape_interval": "1s",
        "evaluation_interval": "1s",
        "fault_token_file": str(state_dir / "fault_token"),
        "embedded_postgres": None,
    }
    (state_dir / "stack.json").write_text(json.dumps(state))


# -- the drills file and the rules it names ----------------------------------------------------


def test_every_expected_alert_exists_with_the_expected_severity() -> None:
    rules = rule_index()
    phases = load_drills()
    named = [e for phase in phases for e in phase.expect if e.alert]
    assert named, "the drills expect no named alert"
    for expectation in named:
        assert expectation.alert in rules
        assert rules[expectation.alert]["labels"]["severity"] == expectation.severity


@pytest.mark.slow  # amtool (Debian package prometheus-alertmanager)
def test_page_alerts_route_to_a_receiver_other_than_the_default() -> None:
    assert routed_receiver({"alertname": "TaskboardAvailabilityFastBurn", "severity": "page"}) == "oncall"
    assert routed_receiver({"alertname": "Anything", "severity": "ticket"}) == "chat"


@pytest.mark.slow  # amtool (Debian package prometheus-alertmanager)
def test_a_routing_amtool_cannot_read_is_not_measured(tmp_path: Path) -> None:
    with pytest.raises(NotMeasured, match=re.escape("amtool config routes test missing.yml exited 1")):
        routed_receiver({"alertname": "Anything"}, tmp_path / "missing.yml")


@pytest.mark.parametrize(
    "text, message",
    [
        ("phases: [{name: a, seconds: 1}]", "exactly one phase must be the gate"),
        ("phases: [{name: a, seconds: 1, gate: true, start: reboot}]", "phase a: start must be one of"),
        ("phases: [{name: a, seconds: 1, gate: true, expect: [{state: firing}]}]", "needs an alert or a severity"),
        ("phases: [{name: a, seconds: 1, gate: true, expect: [{alert: X, state: maybe}]}]", "firing or silent"),
        ("phases: [{name: a, seconds: 1, gate: true, recover: soon}]", "recover must be"),
        ("phases: [{name: a, gate: true}]", "phase a: seconds must be a number"),
        ("phases: {name: a}", "phases must be a list"),
        ("phases: [a: b: c]", "not valid YAML"),
    ],
)
def test_bad_drills_files_name_the_phase_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "drills.yaml"
    path.write_text(text)
    with pytest.raises(NotMeasured, match=message):
        load_drills(path)


# -- arithmetic --------------------------------------------------------------------------------


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


# -- the HTTP boundaries: any fault is NotMeasured, never a wrong or empty SLI ------------------

QUERY = "/api/v1/query"


def test_prometheus_answers_are_read() -> None:
    body = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {"le": "0.1"}, "value": [1, "3"]}]},
    }
    with serving({QUERY: (200, json.dumps(body))}) as url:
        assert Prometheus(url).query("up") == [Sample({"le": "0.1"}, 3.0)]


@pytest.mark.parametrize(
    "status, body, message",
    [
        (500, "boom", "Prometheus answered HTTP 500 to GET /api/v1/query: boom"),
        (503, '{"status": "error", "error": "overloaded"}', "Prometheus answered HTTP 503"),
        (200, "<html>a proxy's page</html>", "Prometheus answered GET /api/v1/query with a body that is not JSON"),
        (200, '{"status": "error", "error": "parse error"}', "Prometheus refused /api/v1/query 'up': parse error"),
        (200, '{"status": "success", "data": {"result": [{"metric": {}}]}}', "in a shape it does not document"),
        (200, '{"status": "success", "data": null}', "in a shape it does not document"),
    ],
)
def test_prometheus_faults_are_not_measured(status: int, body: str, message: str) -> None:
    with serving({QUERY: (status, body)}) as url, pytest.raises(NotMeasured, match=message):
        Prometheus(url).query("up")


def test_unreachable_servers_are_not_measured() -> None:
    with serving({}) as url:
        pass  # a port that was just free and is closed now
    with pytest.raises(NotMeasured, match=re.escape(f"Prometheus at {url} did not answer GET /api/v1/alerts")):
        Prometheus(url).firing()
    with pytest.raises(NotMeasured, match=re.escape(f"Alertmanager at {url} did not answer GET /api/v2/alerts")):
        Alertmanager(url).alerts()


def test_alertmanager_faults_are_not_measured() -> None:
    with serving({"/api/v2/alerts": (502, "bad gateway")}) as url, pytest.raises(NotMeasured, match="HTTP 502"):
        Alertmanager(url).alerts()
    with serving({"/api/v2/alerts": (200, '[{"receivers": []}]')}) as url, pytest.raises(NotMeasured, match="shape"):
        Alertmanager(url).alerts()


# -- the stack, the load ------------------------------------------------------------------------


def test_a_running_stack_is_reused_and_a_stopped_one_is_not(tmp_path: Path) -> None:
    assert running_stack(tmp_path) is None  # no state at all
    with serving(UP) as url:
        _stack_json(tmp_path, url)
        target = running_stack(tmp_path)
        assert target is not None and target.reused and target.app_url == url
        assert target.fault_token == "token-0123456789abcdef"
    assert running_stack(tmp_path) is None  # the same state, nothing answers there any more
    (tmp_path / "stack.json").write_text("{")
    with pytest.raises(NotMeasured, match=re.escape("stack.json: not the state of a running stack")):
        running_stack(tmp_path)


def test_a_stack_error_becomes_one_line() -> None:
    log_tail = "app: http://127.0.0.1:1/readyz: the process exited\nlast lines of /s/logs/app.log:\nx\ny"
    assert one_line(log_tail) == "app: http://127.0.0.1:1/readyz: the process exited (log: /s/logs/app.log)"
    assert one_line("app.migrate failed:\nTraceback\n  File x\nConfigError: DATABASE_URL: bad") == (
        "app.migrate failed: ConfigError: DATABASE_URL: bad"
    )
    assert one_line("PostgreSQL: port taken") == "PostgreSQL: port taken"


def test_a_locust_that_died_is_not_measured(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    with pytest.raises(NotMeasured, match=r"Locust exited during the steady phase \(exit code 3\); see .*locust.log"):
        Load(process, tmp_path / "locust.log").require_running("during the steady phase")


# -- the drills, against stand-ins for Prometheus and Alertmanager --------------------------------

FAST_BURN = {"alertname": "TaskboardAvailabilityFastBurn", "severity": "page"}


class _Prometheus:
    """Fires ``alerts`` from the ``after``-th look on; the rule's condition holds from the first."""

    def __init__(self, alerts: list[dict[str, str]], after: int = 0) -> None:
        self.alerts, self.after, self.looks = alerts, after, 0

    def firing(self) -> list[dict[str, str]]:
        self.looks += 1
        return self.alerts if self.looks > self.after else []

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        return [Sample({}, 1.0)]


class _Alertmanager:
    def __init__(self, receivers: frozenset[str]) -> None:
        self.receivers = receivers

    def alerts(self) -> list[Held]:
        return [Held(FAST_BURN, self.receivers)]


def _drill(prom: _Prometheus, receivers: frozenset[str] = frozenset({"oncall"})) -> Drill:
    target = Target("http://127.0.0.1:1", "", "", "1s", "1s", "token", None, reused=False)
    rules = {FAST_BURN["alertname"]: {"expr": "up", "for": "2s", "labels": {"severity": "page"}}}
    return Drill(target, None, rules, prom, _Alertmanager(receivers), poll_seconds=0.05)  # type: ignore[arg-type]


OUTAGE = Phase("outage", 3.0, expect=(Expectation(FAST_BURN["alertname"], "page", "firing"),))
STEADY = Phase("steady", 0.3, gate=True, expect=(Expectation(None, "page", "silent"),))


@pytest.mark.slow  # amtool (Debian package prometheus-alertmanager)
def test_an_alert_that_fires_and_reaches_its_receiver_passes_and_ends_the_phase() -> None:
    result = _drill(_Prometheus([FAST_BURN], after=2)).run(OUTAGE)
    assert result.passed
    [expectation] = result.expectations
    assert expectation.receiver == "oncall" and expectation.bound_seconds == 1 + 2 + 2 + 1 + 5
    assert result.end - result.start < OUTAGE.seconds  # it waited for the alert, not for the clock


@pytest.mark.slow  # amtool (Debian package prometheus-alertmanager)
def test_an_alert_delivered_to_the_wrong_receiver_fails_its_drill() -> None:
    phase = dataclasses.replace(OUTAGE, seconds=1.0)
    result = _drill(_Prometheus([FAST_BURN]), receivers=frozenset({"chat"})).run(phase)
    assert not result.passed
    assert result.expectations[0].detail == "not firing after 1 s"
    assert verdict.passed([{"passed": True}], [result]) is False  # → exit 1


def test_a_page_during_the_steady_phase_fails_it() -> None:
    result = _drill(_Prometheus([FAST_BURN])).run(STEADY)
    assert not result.passed and result.expectations[0].detail == f"fired: {FAST_BURN['alertname']}"
    assert _drill(_Prometheus([])).run(STEADY).passed


def test_a_database_drill_without_the_embedded_database_is_not_measured() -> None:
    with pytest.raises(NotMeasured, match="the database drill needs the embedded PostgreSQL"):
        _drill(_Prometheus([])).act(Phase("outage", 1, start="stop-database"))


# -- settings and the exit code ------------------------------------------------------------------


def test_flags_win_over_variables_and_both_are_checked() -> None:
    settings = parse(["--users", "3"], {"SLO_CHECK_USERS": "7", "SLO_CHECK_SPAWN_RATE": "2.5"})
    assert (settings.users, settings.spawn_rate) == (3, 2.5)
    with pytest.raises(NotMeasured, match=re.escape("--spawn-rate: must be between 0.1 and 1000, got 0")):
        parse(["--spawn-rate", "0"], {})
    with pytest.raises(NotMeasured, match="--faults: must be a JSON object"):
        parse(["--faults", "[1]"], {})


def test_a_bug_in_the_gate_is_exit_2_not_a_verdict(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def broken(settings: object) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(gate, "run", broken)
    assert main([]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" in lines[0]  # whoever fixes the gate needs it
    assert lines[-1] == f"{PREFIX}the gate itself failed (KeyError, above)"


def _gate(tmp_path: Path, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m loadtest.slo_check` with ``args``; make run's state looked for under tmp_path only."""
    environment = {**os.environ, "STACK_STATE_DIR": str(tmp_path / "run"), **env}
    command = [
        sys.executable, "-m", "loadtest.slo_check", "--out", str(tmp_path / "report"),
        "--state-dir", str(tmp_path / "stack"), *args,
    ]  # fmt: skip
    try:
        return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout)
    finally:
        remove_state(tmp_path / "stack")


def _assert_could_not_measure(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit 2, no traceback, and the last line of stderr the only one of ours, saying why."""
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("make slo-check:")]
    assert ours == [result.stderr.splitlines()[-1]]
    assert ours[0].startswith(PREFIX + message), ours[0]


def test_a_bad_variable_is_exit_2_naming_it(tmp_path: Path) -> None:
    result = _gate(tmp_path, timeout=60, SLO_CHECK_USERS="many")
    _assert_could_not_measure(result, "SLO_CHECK_USERS: must be an integer, got 'many'")
    assert not (tmp_path / "report").exists()  # it stopped before touching anything


@pytest.mark.slow  # the SLO gate starts the local stack
def test_a_stack_that_does_not_start_is_exit_2(tmp_path: Path) -> None:
    # A setting the service refuses: its workers exit at boot, so the stack never gets ready.
    result = _gate(tmp_path, "--no-drills", "--steady", "5", timeout=120, DB_POOL_MAX="0")
    _assert_could_not_measure(result, "the stack did not start: app: ")
    assert f"(log: {tmp_path / 'stack' / 'logs' / 'app.log'})" in result.stderr
    assert not (tmp_path / "report" / "summary.json").exists()


def test_prometheus_answering_500_is_exit_2(tmp_path: Path) -> None:
    answers = {**UP, "/api/v1/alerts": (500, "internal error"), QUERY: (500, "internal error")}
    with serving(answers) as url:
        _stack_json(tmp_path / "run", url)  # a "make run" stack whose Prometheus is broken
        result = _gate(tmp_path, "--no-drills", "--steady", "5", timeout=120, SLO_CHECK_USERS="1")
    _assert_could_not_measure(result, "Prometheus answered HTTP 500 to GET /api/v1/alerts: internal error")
    assert f"using the stack make run serves at {url}" in result.stderr
    assert not (tmp_path / "report" / "summary.json").exists()


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "summary.json").read_text())
    for chart, lines in report["charts"].items():
        assert (out / chart).read_bytes().startswith(b"\x89PNG")
        assert all(points > 0 for points in lines.values()), f"{chart} has an empty line: {lines}"
    assert (out / "locust_stats.csv").exists() and (out / "locust.html").exists()
    return report


@pytest.mark.slow  # the SLO gate: the local stack under Locust
def test_the_gate_passes_a_healthy_build(tmp_path: Path) -> None:
    result = _gate(tmp_path, "--no-drills", "--steady", "15", SLO_CHECK_USERS="5")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    report = _report(tmp_path / "report")
    assert report["passed"] is True and not report["reused_stack"]
    assert [v["passed"] for v in report["gate"]["verdicts"]] == [True, True]
    assert report["gate"]["slis"]["requests"] > 0 and report["gate"]["slis"]["errors"] == 0
    assert (tmp_path / "report" / "summary.md").read_text().startswith("# SLO check ✅ passed")


@pytest.mark.slow  # the SLO gate: the local stack under Locust
def test_the_gate_fails_a_build_that_left_fault_injection_on(tmp_path: Path) -> None:
    result = _gate(tmp_path, "--no-drills", "--steady", "20", "--faults", json.dumps({"*": {"error_ratio": 0.05}}))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "could not measure" not in result.stderr
    report = _report(tmp_path / "report")
    verdicts = {v["slo"]: v for v in report["gate"]["verdicts"]}
    assert verdicts["availability"]["passed"] is False
    assert 0.85 < verdicts["availability"]["measured"] < 0.99  # about 5 % injected errors
    assert report["gate"]["slis"]["errors"] > 0
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert summary.startswith("# SLO check ❌ FAILED")
    assert "| Availability | 99.900 % |" in summary and "| **FAIL** |" in summary
