"""`make slo-check`: the SLO gate. Load the service, measure its SLIs, drill failures, assert the alerts.

1. Use the stack `make run` is serving, or start one of its own (fresh database, free ports) with
   short scrape and evaluation intervals, the generated rules and the repository's routing.
2. Run Locust headless for the whole check, and walk the phases of loadtest/drills.yaml: steady load
   (the gate), a database outage, a latency fault, each followed by its recovery.
3. Compute the SLIs of the gate phase from Prometheus over exactly that window (counter deltas, not
   rate extrapolation) and compare them with the objectives of observability/slo/taskboard.yaml — the
   file the alert rules are generated from. Check every drill's alerts: firing in Prometheus within
   a bound from scrape + evaluation interval + `for:`, and in Alertmanager on the routed receiver.
4. Write reports/slo/: summary.md and summary.json, Locust's CSV and HTML, PNG charts with the drills
   shaded. Exit 0 when every SLO and every expectation holds, 1 otherwise, 2 when the check could not run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
import yaml

from app import endpoints
from app import metric_names as names
from loadtest import runner
from local.postgres import EmbeddedPostgres
from local.stack import ROOT, Stack, StackError, StackSettings, free_port, remove_state, wait_http
from observability import promql
from observability.slo import spec as slo_spec
from observability.slo_rules import alert_name, route_matchers

SLO_FILE = ROOT / "observability" / "slo" / "taskboard.yaml"
DRILLS_FILE = ROOT / "loadtest" / "drills.yaml"
RULES_DIR = ROOT / "observability" / "rules"
ALERTMANAGER_ROUTING = ROOT / "observability" / "alertmanager" / "alertmanager.yml"
REPORTS = ROOT / "reports" / "slo"
OWN_STATE = ROOT / ".local" / "slo-check"
# The gate's own stack looks often, so alerts and SLIs settle within seconds.
SCRAPE_INTERVAL = "1s"
EVALUATION_INTERVAL = "1s"
RECOVERY_WINDOW = 10.0  # seconds of clean traffic that count as recovered
QUANTILES = (0.5, 0.95, 0.99)


class CheckError(RuntimeError):
    """The check could not run (as opposed to: it ran and an SLO failed)."""


# -- the drills file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expectation:
    alert: str | None
    severity: str | None
    state: str  # "firing" or "silent"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (self.alert is None or labels.get("alertname") == self.alert) and (
            self.severity is None or labels.get("severity") == self.severity
        )

    def describe(self) -> str:
        who = self.alert or "any alert"
        return f"{who}{f' ({self.severity})' if self.severity else ''} {self.state}"


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    start: str | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    gate: bool = False
    expect: tuple[Expectation, ...] = ()
    recover: str | None = None


_STARTS = {None, "stop-database", "start-database", "inject", "clear-faults"}


def load_drills(path: Path = DRILLS_FILE) -> list[Phase]:
    """The phases, validated: a mistake names the phase and the key."""
    data = yaml.safe_load(path.read_text())
    phases = []
    for index, item in enumerate(data.get("phases", [])):
        where = f"{path.name}: phase {item.get('name', index)}"
        if item.get("start") not in _STARTS:
            raise CheckError(f"{where}: start must be one of {sorted(s for s in _STARTS if s)}")
        if item.get("recover") not in {None, "availability", "latency"}:
            raise CheckError(f"{where}: recover must be availability or latency")
        expectations = []
        for raw in item.get("expect", []):
            if raw.get("state") not in {"firing", "silent"}:
                raise CheckError(f"{where}: expect.state must be firing or silent")
            if not raw.get("alert") and not raw.get("severity"):
                raise CheckError(f"{where}: an expectation needs an alert or a severity")
            expectations.append(Expectation(raw.get("alert"), raw.get("severity"), raw["state"]))
        phases.append(
            Phase(
                name=item["name"],
                seconds=float(item["seconds"]),
                start=item.get("start"),
                faults=item.get("faults", {}),
                gate=bool(item.get("gate", False)),
                expect=tuple(expectations),
                recover=item.get("recover"),
            )
        )
    if sum(p.gate for p in phases) != 1:
        raise CheckError(f"{path.name}: exactly one phase must be the gate")
    return phases


def rule_index(rules_dir: Path = RULES_DIR) -> dict[str, dict[str, Any]]:
    """Every alerting rule in the generated and hand-written rule files, by name."""
    alerts: dict[str, dict[str, Any]] = {}
    for path in sorted(rules_dir.glob("*.y*ml")):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    return alerts


def alert_bound(rule: Mapping[str, Any], scrape: str, evaluation: str) -> float:
    """How long an alert may take to fire once its condition holds, in seconds.

    The condition is the rule's own expression, asked of Prometheus by the check each second. From
    then: a scrape (the check may have seen a sample the evaluator had not), two evaluations (the
    recording rules, then the alert), the rule's `for:`, one second of our polling, and 5 s of slack
    for a loaded 2-core machine. How soon the condition holds after a fault depends on traffic and
    windows, not on the alerting pipeline; each phase's `seconds` caps that.
    """
    hold = promql.seconds(rule["for"]) if rule.get("for") else 0
    return promql.seconds(scrape) + 2 * promql.seconds(evaluation) + hold + 1 + 5


# -- talking to Prometheus and Alertmanager -----------------------------------------------------


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = self.session.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise CheckError(f"Prometheus refused {expr!r}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"}
        body = self.session.get(f"{self.url}/api/v1/query_range", params=params, timeout=30).json()
        if body.get("status") != "success":
            raise CheckError(f"Prometheus refused {expr!r}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def firing(self) -> list[dict[str, Any]]:
        alerts = self.session.get(f"{self.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]


def alertmanager_alerts(url: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = requests.get(f"{url}/api/v2/alerts", timeout=10).json()
    return result


def routed_receiver(labels: Mapping[str, str], config: Path = ALERTMANAGER_ROUTING) -> str:
    """The receiver the repository's routing gives an alert with ``labels`` (amtool decides)."""
    amtool = shutil.which("amtool")
    if amtool is None:
        raise CheckError("amtool not found: install the Debian package prometheus-alertmanager")
    result = subprocess.run(  # noqa: S603
        [amtool, "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip()


# -- SLIs over an exact window ------------------------------------------------------------------


@dataclass
class Window:
    name: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def _by_label(result: list[dict[str, Any]], label: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for series in result:
        key = series["metric"].get(label, "") if label else ""
        out[key] = out.get(key, 0.0) + float(series["value"][1])
    return out


def _delta(prom: Prometheus, expr: str, window: Window, by: str | None = None) -> dict[str, float]:
    """Counter growth of ``expr`` (summed, optionally by one label) between the window's ends."""
    aggregate = f"sum by ({by}) ({expr})" if by else f"sum({expr})"
    end = _by_label(prom.query(aggregate, at=window.end), by)
    start = _by_label(prom.query(aggregate, at=window.start), by)
    return {key: max(0.0, value - start.get(key, 0.0)) for key, value in end.items()}


def quantile_from_buckets(q: float, buckets: Mapping[str, float]) -> float | None:
    """histogram_quantile() on cumulative bucket counts keyed by their `le` text."""
    bounds = sorted(((math.inf if le == "+Inf" else float(le)), count) for le, count in buckets.items())
    if not bounds or bounds[-1][1] <= 0:
        return None
    rank = q * bounds[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # as Prometheus does: the highest finite bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass
class SLIs:
    requests: float
    errors: float
    fast: float
    throughput_rps: float
    availability: float | None
    latency_sli: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def measure(prom: Prometheus, service: slo_spec.ServiceSLOs, window: Window) -> SLIs:
    """Availability, latency SLI, percentiles and throughput of user traffic within ``window``."""
    availability_slo = next(s for s in service.slos if isinstance(s.sli, slo_spec.AvailabilitySLI))
    latency_slo = next(s for s in service.slos if isinstance(s.sli, slo_spec.LatencySLI))
    assert isinstance(availability_slo.sli, slo_spec.AvailabilitySLI)
    assert isinstance(latency_slo.sli, slo_spec.LatencySLI)
    base = route_matchers(service)
    total = _delta(prom, promql.selector(availability_slo.sli.metric.total, base, wrap=10_000), window).get("", 0.0)
    bad_matchers = [*base, (names.STATUS, "=~", availability_slo.sli.bad_status)]
    errors = _delta(prom, promql.selector(availability_slo.sli.metric.total, bad_matchers, wrap=10_000), window)
    buckets = _delta(prom, promql.selector(latency_slo.sli.metric.bucket, base, wrap=10_000), window, by="le")
    threshold = latency_slo.sli.threshold_seconds
    fast = next((count for le, count in buckets.items() if le != "+Inf" and float(le) == threshold), 0.0)
    count = buckets.get("+Inf", 0.0)
    quantiles = [quantile_from_buckets(q, buckets) for q in QUANTILES]
    bad = errors.get("", 0.0)
    return SLIs(
        requests=round(total),
        errors=round(bad),
        fast=round(fast),
        throughput_rps=round(total / window.seconds, 2) if window.seconds > 0 else 0.0,
        availability=(1 - bad / total) if total else None,
        latency_sli=(fast / count) if count else None,
        p50_ms=None if quantiles[0] is None else round(quantiles[0] * 1000, 1),
        p95_ms=None if quantiles[1] is None else round(quantiles[1] * 1000, 1),
        p99_ms=None if quantiles[2] is None else round(quantiles[2] * 1000, 1),
    )


# -- the stack under test -----------------------------------------------------------------------


@dataclass
class Target:
    """The running stack: URLs, how to stop and start its database, how to inject faults."""

    app_url: str
    prometheus_url: str
    alertmanager_url: str
    scrape_interval: str
    evaluation_interval: str
    fault_token: str
    postgres: EmbeddedPostgres | None
    reused: bool


def running_stack(state_dir: Path) -> Target | None:
    """The stack `make run` serves, if it is up and has the drill switch on."""
    path = state_dir / "stack.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    try:
        requests.get(f"{state['app_url']}{endpoints.HEALTHZ}", timeout=2).raise_for_status()
        requests.get(f"{state['prometheus_url']}/-/ready", timeout=2).raise_for_status()
    except requests.RequestException:
        return None
    if not state.get("fault_token_file"):
        return None
    pg = state.get("embedded_postgres")
    return Target(
        app_url=state["app_url"],
        prometheus_url=state["prometheus_url"],
        alertmanager_url=state["alertmanager_url"],
        scrape_interval=state["scrape_interval"],
        evaluation_interval=state["evaluation_interval"],
        fault_token=Path(state["fault_token_file"]).read_text().strip(),
        postgres=EmbeddedPostgres(Path(pg["requested_dir"]), int(pg["port"])) if pg else None,
        reused=True,
    )


@contextmanager
def start_own_stack(faults: Mapping[str, Any] | None, state_dir: Path = OWN_STATE) -> Iterator[Target]:
    """A fresh stack on free ports under ``state_dir`` (wiped first), stopped afterwards."""
    remove_state(state_dir)
    state_dir.mkdir(parents=True)
    if faults:
        # What a build with fault injection left on looks like: faults from the first request.
        (state_dir / "faults.json").write_text(json.dumps(faults))
    settings = StackSettings(
        state_dir=state_dir,
        app_port=free_port(),
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        pg_port=free_port(),
        scrape_interval=SCRAPE_INTERVAL,
        evaluation_interval=EVALUATION_INTERVAL,
        seed=True,
        # The production worker count; a request delayed by the latency drill waits in a greenlet
        # and holds no worker (app/worker.py), so the drill's slow requests add up quickly.
        workers=2,
        app_env={"LOG_LEVEL": "WARNING"},  # the access log of thousands of requests helps no one here
    )
    stack = Stack(settings, out=sys.stderr)
    try:
        stack.start()
    except StackError as exc:
        raise CheckError(str(exc)) from exc
    try:
        yield Target(
            app_url=settings.app_url,
            prometheus_url=settings.prometheus_url,
            alertmanager_url=settings.alertmanager_url,
            scrape_interval=settings.scrape_interval,
            evaluation_interval=settings.evaluation_interval,
            fault_token=(state_dir / "fault_token").read_text().strip(),
            postgres=stack.postgres,
            reused=False,
        )
    finally:
        stack.stop()


# -- running the phases -------------------------------------------------------------------------


@dataclass
class ExpectationResult:
    expectation: str
    passed: bool
    detail: str
    seconds_to_condition: float | None = None
    seconds_to_fire: float | None = None
    bound_seconds: float | None = None
    receiver: str | None = None


@dataclass
class PhaseResult:
    name: str
    start: float
    end: float
    action: str | None
    expectations: list[ExpectationResult] = field(default_factory=list)
    recovered: bool | None = None
    recovery_seconds: float | None = None
    slis: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.expectations) and self.recovered is not False


class Drill:
    def __init__(self, target: Target, service: slo_spec.ServiceSLOs, rules: dict[str, dict[str, Any]]) -> None:
        self.target = target
        self.service = service
        self.rules = rules
        self.prom = Prometheus(target.prometheus_url)
        self.auth = {"Authorization": f"Bearer {target.fault_token}"}

    def act(self, phase: Phase) -> None:
        pg = self.target.postgres
        if phase.start in {"stop-database", "start-database"} and pg is None:
            raise CheckError("the database drill needs the embedded PostgreSQL (DATABASE_URL points elsewhere)")
        if phase.start == "stop-database":
            assert pg is not None
            pg.stop(mode="immediate")  # as abrupt as a crashed or partitioned database
        elif phase.start == "start-database":
            assert pg is not None
            pg.start()
        elif phase.start == "inject":
            url = f"{self.target.app_url}{endpoints.ADMIN_FAULTS}"
            requests.put(url, json=phase.faults, headers=self.auth, timeout=10).raise_for_status()
        elif phase.start == "clear-faults":
            url = f"{self.target.app_url}{endpoints.ADMIN_FAULTS}"
            requests.delete(url, headers=self.auth, timeout=10).raise_for_status()

    def run(self, phase: Phase) -> PhaseResult:
        started = time.time()
        self.act(phase)
        result = PhaseResult(phase.name, started, started, phase.start)
        firing_expected = [e for e in phase.expect if e.state == "firing"]
        silent_expected = [e for e in phase.expect if e.state == "silent"]
        fired_at: dict[Expectation, float] = {}
        condition_at: dict[Expectation, float] = {}
        receivers: dict[Expectation, str] = {}
        violations: dict[Expectation, str] = {}
        recovered_at: float | None = None
        deadline = started + phase.seconds
        while time.time() < deadline:
            firing = self.prom.firing()
            for expectation in silent_expected:
                hits = [a for a in firing if expectation.matches(a["labels"])]
                if hits and expectation not in violations:
                    violations[expectation] = ", ".join(sorted({a["labels"]["alertname"] for a in hits}))
            for expectation in firing_expected:
                if expectation in fired_at:
                    continue
                if expectation not in condition_at and self._condition_holds(expectation):
                    condition_at[expectation] = time.time() - started
                hits = [a for a in firing if expectation.matches(a["labels"])]
                if hits and (receiver := self._delivered(hits[0]["labels"])):
                    fired_at[expectation] = time.time() - started
                    receivers[expectation] = receiver
            if phase.recover and recovered_at is None and self._recovered(phase.recover):
                recovered_at = time.time() - started
            # A phase that waits for something ends when it happened; one that watches runs its time.
            waits = bool(firing_expected or phase.recover) and not silent_expected
            fired = len(fired_at) == len(firing_expected)
            if waits and fired and (not phase.recover or recovered_at is not None):
                break
            time.sleep(1.0)
        result.end = time.time()
        for expectation in silent_expected:
            broken = violations.get(expectation)
            result.expectations.append(
                ExpectationResult(
                    expectation.describe(), broken is None, f"fired: {broken}" if broken else "none fired"
                )
            )
        for expectation in firing_expected:
            bound = self._bound(expectation)
            took = fired_at.get(expectation)
            # Without a named rule there is no condition to time from: the phase start stands in.
            since = condition_at.get(expectation, 0.0) if expectation.alert else 0.0
            if took is None:
                passed, detail = False, f"not firing after {phase.seconds:.0f} s"
            else:
                passed = took - since <= bound
                detail = f"condition held after {since:.0f} s, firing {took - since:.0f} s later"
            result.expectations.append(
                ExpectationResult(
                    expectation.describe(),
                    passed,
                    detail,
                    seconds_to_condition=round(since, 1),
                    seconds_to_fire=None if took is None else round(took, 1),
                    bound_seconds=bound,
                    receiver=receivers.get(expectation),
                )
            )
        if phase.recover:
            result.recovered = recovered_at is not None
            result.recovery_seconds = None if recovered_at is None else round(recovered_at, 1)
        return result

    def _condition_holds(self, expectation: Expectation) -> bool:
        rule = self.rules.get(expectation.alert or "")
        return rule is not None and bool(self.prom.query(rule["expr"]))

    def _bound(self, expectation: Expectation) -> float:
        rule = self.rules.get(expectation.alert or "", {})
        return alert_bound(rule, self.target.scrape_interval, self.target.evaluation_interval)

    def _delivered(self, labels: Mapping[str, str]) -> str | None:
        """The receiver Alertmanager holds the alert for, if it is the one the routing gives it."""
        expected = routed_receiver({k: v for k, v in labels.items() if k in {"alertname", "severity"}})
        for alert in alertmanager_alerts(self.target.alertmanager_url):
            if alert["labels"].get("alertname") == labels.get("alertname"):
                got = {r["name"] for r in alert.get("receivers", [])}
                if expected in got:
                    return expected
        return None

    def _recovered(self, kind: str) -> bool:
        now = time.time()
        slis = measure(self.prom, self.service, Window("recovery", now - RECOVERY_WINDOW, now))
        if slis.requests < 5:
            return False
        if kind == "availability":
            return slis.errors == 0
        latency = next(s for s in self.service.slos if isinstance(s.sli, slo_spec.LatencySLI))
        assert isinstance(latency.sli, slo_spec.LatencySLI)
        return slis.p99_ms is not None and slis.p99_ms < latency.sli.threshold_seconds * 1000


# -- Locust -------------------------------------------------------------------------------------


@contextmanager
def locust(host: str, out: Path, users: int, spawn_rate: float) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Locust for as long as the block runs, every user spawned before it starts."""
    with runner.headless(host, out, users=users, spawn_rate=spawn_rate, history=True, html=True) as process:
        time.sleep(max(2.0, users / spawn_rate + 1))
        if process.poll() is not None:
            raise CheckError(f"Locust exited at start; see {out / 'locust.log'}")
        yield process


# -- reports ------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.3f} %"


def verdicts(service: slo_spec.ServiceSLOs, slis: SLIs) -> list[dict[str, Any]]:
    rows = []
    for slo in service.slos:
        measured = slis.availability if isinstance(slo.sli, slo_spec.AvailabilitySLI) else slis.latency_sli
        objective = float(slo.objective)
        rows.append(
            {
                "slo": slo.name,
                "title": slo.title,
                "objective": objective,
                "measured": measured,
                "passed": measured is not None and measured >= objective,
            }
        )
    return rows


def markdown(report: Mapping[str, Any]) -> str:
    gate = report["gate"]
    slis = gate["slis"]
    ok = "✅" if report["passed"] else "❌"
    lines = [
        f"# SLO check {ok} {'passed' if report['passed'] else 'FAILED'}",
        "",
        f"{report['users']} Locust users against {report['target']} for {report['duration_seconds']:.0f} s; "
        f"the gate is the **{gate['phase']}** phase ({gate['seconds']:.0f} s, {slis['requests']:.0f} requests, "
        f"{slis['throughput_rps']:.1f} req/s).",
        "",
        "| SLO | objective | measured | result |",
        "|---|---:|---:|:---:|",
    ]
    for row in gate["verdicts"]:
        lines.append(
            f"| {row['title']} | {_percent(row['objective'])} | {_percent(row['measured'])} | "
            f"{'pass' if row['passed'] else '**FAIL**'} |"
        )
    lines += [
        "",
        f"Latency in the gate phase: p50 {slis['p50_ms']} ms, p95 {slis['p95_ms']} ms, p99 {slis['p99_ms']} ms; "
        f"{slis['errors']:.0f} server errors.",
        "",
        "## Drills",
        "",
        "| phase | started (UTC) | expectation | result | detail |",
        "|---|---|---|:---:|---|",
    ]
    for phase in report["phases"]:
        started = time.strftime("%H:%M:%S", time.gmtime(phase["start"]))
        rows = list(phase["expectations"])
        if phase["recovered"] is not None:
            rows.append(
                {
                    "expectation": f"recovers ({RECOVERY_WINDOW:.0f} s clean)",
                    "passed": phase["recovered"],
                    "detail": f"by {phase['recovery_seconds']} s after the start"
                    if phase["recovered"]
                    else "did not recover",
                }
            )
        if not rows:
            rows = [{"expectation": "—", "passed": True, "detail": ""}]
        for row in rows:
            detail = row["detail"]
            if row.get("bound_seconds") is not None:
                detail += f" (bound {row['bound_seconds']:.0f} s)"
            if row.get("receiver"):
                detail += f", delivered to {row['receiver']}"
            lines.append(
                f"| {phase['name']} | {started} | {row['expectation']} | {'pass' if row['passed'] else '**FAIL**'} "
                f"| {detail} |"
            )
    lines += ["", "Charts: throughput.png, errors.png, latency.png. Locust: locust.html, locust_stats.csv."]
    return "\n".join(lines) + "\n"


def charts(prom: Prometheus, service: slo_spec.ServiceSLOs, report: Mapping[str, Any], out: Path) -> None:
    """Throughput, error ratio and p50/p95/p99 over the run, drills shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = promql.selector(names.HTTP_REQUESTS.total, route_matchers(service), wrap=10_000)
    bad = promql.selector(
        names.HTTP_REQUESTS.total, [*route_matchers(service), (names.STATUS, "=~", "5..")], wrap=10_000
    )
    buckets = promql.selector(names.HTTP_REQUEST_DURATION.bucket, route_matchers(service), wrap=10_000)
    start, end = report["start"], report["end"]
    step = 2.0

    def series(expr: str) -> tuple[list[float], list[float]]:
        result = prom.query_range(expr, start, end, step)
        if not result:
            return [], []
        values = result[0]["values"]
        return [float(t) - start for t, _ in values], [float(v) for _, v in values]

    plots = {
        "throughput.png": ("requests per second", {"req/s": f"sum(rate({base}[10s]))"}, 1.0),
        "errors.png": (
            "share of requests answered 5xx",
            {"5xx ratio": f"(sum(rate({bad}[10s])) or vector(0)) / sum(rate({base}[10s]))"},
            1.0,
        ),
        "latency.png": (
            "latency (ms)",
            {f"p{int(q * 100)}": f"histogram_quantile({q}, sum by (le) (rate({buckets}[10s])))" for q in QUANTILES},
            1000.0,
        ),
    }
    for filename, (ylabel, exprs, scale) in plots.items():
        fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
        for label, expr in exprs.items():
            xs, ys = series(expr)
            ax.plot(xs, [y * scale for y in ys], label=label)
        top = ax.get_ylim()[1]
        for index, phase in enumerate(report["phases"]):
            if phase["name"] == report["gate"]["phase"]:
                continue
            color = "tab:green" if phase["recovered"] is not None else "tab:red"
            ax.axvspan(phase["start"] - start, phase["end"] - start, color=color, alpha=0.10, lw=0)
            ax.text(
                phase["start"] - start + 0.5, top * (0.95 - 0.12 * (index % 2)), phase["name"],
                fontsize=7, va="top", color=color,
            )  # fmt: skip
        ax.set_xlabel("seconds since the load started")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(out / filename)
        plt.close(fig)


# -- main ---------------------------------------------------------------------------------------


def check(args: argparse.Namespace) -> int:
    started = time.time()
    service = slo_spec.load(SLO_FILE)
    phases = load_drills(args.drills)
    if args.no_drills:
        phases = [p for p in phases if p.gate]
    if args.steady is not None:
        phases = [Phase(**{**asdict(p), "expect": p.expect, "seconds": args.steady}) if p.gate else p for p in phases]
    rules = rule_index()
    for phase in phases:
        for expectation in phase.expect:
            if expectation.alert and expectation.alert not in rules:
                raise CheckError(f"{args.drills.name}: phase {phase.name} expects unknown alert {expectation.alert}")
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    reused = None if args.faults else running_stack(ROOT / ".local")
    faults = json.loads(args.faults) if args.faults else None
    stack_context = _reuse(reused) if reused else start_own_stack(faults, args.state_dir)
    with stack_context as target:
        wait_http(f"{target.app_url}{endpoints.READYZ}", 30)
        drill = Drill(target, service, rules)
        results: list[PhaseResult] = []
        with locust(target.app_url, out, args.users, args.spawn_rate):
            load_started = time.time()
            for phase in phases:
                print(f"slo-check: phase {phase.name} ({phase.start or 'load only'})", file=sys.stderr, flush=True)
                result = drill.run(phase)
                results.append(result)
            load_ended = time.time()
        # Let the last scrape land before measuring.
        time.sleep(2 * promql.seconds(target.scrape_interval))
        gate_phase = next(r for r, p in zip(results, phases, strict=True) if p.gate)
        gate_slis = measure(drill.prom, service, Window(gate_phase.name, gate_phase.start, gate_phase.end))
        for result in results:
            result.slis = asdict(measure(drill.prom, service, Window(result.name, result.start, result.end)))
        gate_verdicts = verdicts(service, gate_slis)
        report: dict[str, Any] = {
            "passed": all(v["passed"] for v in gate_verdicts) and all(r.passed for r in results),
            "target": target.app_url,
            "reused_stack": target.reused,
            "users": args.users,
            "start": load_started,
            "end": load_ended,
            "duration_seconds": round(load_ended - load_started, 1),
            "scrape_interval": target.scrape_interval,
            "evaluation_interval": target.evaluation_interval,
            "slo_file": str(SLO_FILE.relative_to(ROOT)),
            "gate": {
                "phase": gate_phase.name,
                "seconds": round(gate_phase.end - gate_phase.start, 1),
                "slis": asdict(gate_slis),
                "verdicts": gate_verdicts,
            },
            "phases": [{**asdict(r), "passed": r.passed} for r in results],
            "alerts": {
                alert_name(service, slo, alert): alert.severity
                for slo in service.slos
                for alert in service.burn_rate_alerts
            },
        }
        charts(drill.prom, service, report, out)
    report["total_seconds"] = round(time.time() - started, 1)
    text = markdown(report)
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=_jsonable))
    (out / "summary.md").write_text(text)
    if summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(summary, "a") as step_summary:
            step_summary.write(text)
    print(text)
    print(f"reports in {out} ({report['total_seconds']:.0f} s in all)")
    return 0 if report["passed"] else 1


@contextmanager
def _reuse(target: Target) -> Iterator[Target]:
    print(f"slo-check: using the stack make run serves at {target.app_url}", file=sys.stderr)
    yield target


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.slo_check", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=int(os.environ.get("SLO_CHECK_USERS", "10")))
    parser.add_argument("--spawn-rate", type=float, default=float(os.environ.get("SLO_CHECK_SPAWN_RATE", "10")))
    parser.add_argument("--steady", type=float, help="seconds of the gate phase (default: drills file)")
    parser.add_argument("--no-drills", action="store_true", help="run only the gate phase")
    parser.add_argument("--drills", type=Path, default=DRILLS_FILE)
    parser.add_argument(
        "--faults",
        help="JSON faults the service starts with, as a build with fault injection left on would "
        '(e.g. \'{"*": {"error_ratio": 0.05}}\'); proves the gate fails',
    )
    parser.add_argument("--out", type=Path, default=REPORTS)
    parser.add_argument("--state-dir", type=Path, default=OWN_STATE, help="where a stack of the check's own lives")
    args = parser.parse_args(argv)
    try:
        return check(args)
    except CheckError as exc:
        print(f"make slo-check: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
