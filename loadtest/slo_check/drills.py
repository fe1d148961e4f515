"""The drill phases: act (stop PostgreSQL, inject a fault, ...), watch the alerts until the phase's
expectations are met or its time is up, then judge each expectation and the recovery.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app import endpoints
from loadtest.slo_check import NotMeasured, api
from loadtest.slo_check.alertmanager import Alertmanager, routed_receiver
from loadtest.slo_check.measure import Window, measure, sli
from loadtest.slo_check.prometheus import Prometheus
from loadtest.slo_check.spec import Expectation, Phase
from loadtest.slo_check.stack import Target
from local.postgres import PostgresError
from observability import promql
from observability.labels import ALERTNAME, SEVERITY
from observability.slo import spec as slo_spec

RECOVERY_WINDOW = 10.0  # seconds of clean traffic that count as recovered
POLL_SECONDS = 1.0
ROUTING_LABELS = (ALERTNAME, SEVERITY)  # what the repository's routing matches on


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


@dataclass
class Seen:
    """What one phase has seen so far; times in seconds since it started."""

    started: float
    condition_at: dict[Expectation, float] = field(default_factory=dict)
    fired_at: dict[Expectation, float] = field(default_factory=dict)
    receivers: dict[Expectation, str] = field(default_factory=dict)
    violations: dict[Expectation, str] = field(default_factory=dict)
    recovered_at: float | None = None

    def now(self) -> float:
        return time.time() - self.started


class Drill:
    """Runs the phases, one at a time, against a running stack under load."""

    def __init__(
        self,
        target: Target,
        service: slo_spec.ServiceSLOs,
        rules: Mapping[str, Mapping[str, Any]],
        prometheus: Prometheus,
        alertmanager: Alertmanager,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.target = target
        self.service = service
        self.rules = rules
        self.prom = prometheus
        self.alertmanager = alertmanager
        self.poll_seconds = poll_seconds

    def run(self, phase: Phase) -> PhaseResult:
        seen = Seen(time.time())
        self.act(phase)
        self.watch(phase, seen)
        result = PhaseResult(phase.name, seen.started, time.time(), phase.start)
        result.expectations = [*self._judge_silent(phase, seen), *self._judge_firing(phase, seen)]
        if phase.recover:
            result.recovered = seen.recovered_at is not None
            result.recovery_seconds = None if seen.recovered_at is None else round(seen.recovered_at, 1)
        return result

    # -- act -------------------------------------------------------------------------------------

    def act(self, phase: Phase) -> None:
        """What happens as the phase begins."""
        if phase.start in {"stop-database", "start-database"}:
            self._database(stop=phase.start == "stop-database")
        elif phase.start in {"inject", "clear-faults"}:
            url = f"{self.target.app_url}{endpoints.ADMIN_FAULTS}"
            auth = {"Authorization": f"Bearer {self.target.fault_token}"}
            method, body = ("PUT", phase.faults) if phase.start == "inject" else ("DELETE", None)
            api.call(method, url, who="the service's fault switch", headers=auth, json=body)

    def _database(self, *, stop: bool) -> None:
        pg = self.target.postgres
        if pg is None:
            raise NotMeasured("the database drill needs the embedded PostgreSQL (DATABASE_URL points elsewhere)")
        try:
            if stop:
                pg.stop(mode="immediate")  # as abrupt as a crashed or partitioned database
            else:
                pg.start()
        except PostgresError as exc:
            raise NotMeasured(f"PostgreSQL: {exc}") from None

    # -- watch -----------------------------------------------------------------------------------

    def watch(self, phase: Phase, seen: Seen) -> None:
        """Poll until the phase's time is up, or until what it waits for happened."""
        deadline = seen.started + phase.seconds
        while time.time() < deadline:
            firing = self.prom.firing()
            self._note_violations(phase.silent, firing, seen)
            self._note_fired(phase.firing, firing, seen)
            if phase.recover and seen.recovered_at is None and self._recovered(phase.recover):
                seen.recovered_at = seen.now()
            if self._over(phase, seen):
                return
            time.sleep(self.poll_seconds)

    @staticmethod
    def _note_violations(silent: list[Expectation], firing: list[dict[str, str]], seen: Seen) -> None:
        for expectation in silent:
            hits = sorted({labels.get(ALERTNAME, "?") for labels in firing if expectation.matches(labels)})
            if hits and expectation not in seen.violations:
                seen.violations[expectation] = ", ".join(hits)

    def _note_fired(self, expected: list[Expectation], firing: list[dict[str, str]], seen: Seen) -> None:
        for expectation in expected:
            if expectation in seen.fired_at:
                continue
            if expectation not in seen.condition_at and self._condition_holds(expectation):
                seen.condition_at[expectation] = seen.now()
            hits = [labels for labels in firing if expectation.matches(labels)]
            if hits and (receiver := self._delivered(hits[0])):
                seen.fired_at[expectation] = seen.now()
                seen.receivers[expectation] = receiver

    @staticmethod
    def _over(phase: Phase, seen: Seen) -> bool:
        # A phase that waits for something ends when it happened; one that watches runs its time.
        waits = bool(phase.firing or phase.recover) and not phase.silent
        fired = len(seen.fired_at) == len(phase.firing)
        return waits and fired and (not phase.recover or seen.recovered_at is not None)

    def _condition_holds(self, expectation: Expectation) -> bool:
        rule = self.rules.get(expectation.alert or "")
        return rule is not None and bool(self.prom.query(rule["expr"]))

    def _delivered(self, labels: Mapping[str, str]) -> str | None:
        """The receiver Alertmanager holds the alert for, if it is the one the routing gives it."""
        expected = routed_receiver({k: v for k, v in labels.items() if k in ROUTING_LABELS})
        for held in self.alertmanager.alerts():
            if held.labels.get(ALERTNAME) == labels.get(ALERTNAME) and expected in held.receivers:
                return expected
        return None

    def _recovered(self, kind: str) -> bool:
        now = time.time()
        slis = measure(self.prom, self.service, Window("recovery", now - RECOVERY_WINDOW, now))
        if slis.requests < 5:
            return False
        if kind == "availability":
            return slis.errors == 0
        threshold_ms = sli(self.service, slo_spec.LatencySLI).threshold_seconds * 1000
        return slis.p99_ms is not None and slis.p99_ms < threshold_ms

    # -- judge -----------------------------------------------------------------------------------

    @staticmethod
    def _judge_silent(phase: Phase, seen: Seen) -> list[ExpectationResult]:
        results = []
        for expectation in phase.silent:
            broken = seen.violations.get(expectation)
            detail = f"fired: {broken}" if broken else "none fired"
            results.append(ExpectationResult(expectation.describe(), broken is None, detail))
        return results

    def _judge_firing(self, phase: Phase, seen: Seen) -> list[ExpectationResult]:
        results = []
        for expectation in phase.firing:
            rule = self.rules.get(expectation.alert or "", {})
            bound = alert_bound(rule, self.target.scrape_interval, self.target.evaluation_interval)
            took = seen.fired_at.get(expectation)
            # Without a named rule there is no condition to time from: the phase start stands in.
            since = seen.condition_at.get(expectation, 0.0) if expectation.alert else 0.0
            if took is None:
                passed, detail = False, f"not firing after {phase.seconds:.0f} s"
            else:
                passed = took - since <= bound
                detail = f"condition held after {since:.0f} s, firing {took - since:.0f} s later"
            results.append(
                ExpectationResult(
                    expectation.describe(),
                    passed,
                    detail,
                    seconds_to_condition=round(since, 1),
                    seconds_to_fire=None if took is None else round(took, 1),
                    bound_seconds=bound,
                    receiver=seen.receivers.get(expectation),
                )
            )
        return results
