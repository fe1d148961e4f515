"""The live proof: the real service, Prometheus with the generated rules and Alertmanager with the repo's
routing, all started through local.stack, fed with traffic that includes errors, slow requests and a
database outage (through the service's fault-injection drill switch and by stopping PostgreSQL)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from app import endpoints
from local.stack import Stack, wait_http

API = endpoints.API_PREFIX
FAULT_TOKEN = "observability-drill-token-0123456789"
SLOW_MS = 400  # above the latency SLO threshold (the SLO file's 0.3 s bucket)
SCRAPE_PAUSE = 2.5  # seconds: more than two scrapes of the stack the tests start (1 s interval)


@dataclass
class Traffic:
    """What was sent, so assertions can compare what Prometheus saw with what happened.

    Only requests sent once ``measuring`` is on are counted in the ``user_*`` totals: the warm-up before
    it creates every labelled series, whose first increments no rate() can see.
    """

    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    measuring: bool = False
    user_total: int = 0  # requests the SLOs count (not probes, /metrics, the drill endpoint, unmatched paths)
    user_5xx: int = 0
    user_slow: int = 0
    started: float = field(default_factory=time.time)

    def count(self, status: int, *, user: bool = True, slow: bool = False) -> None:
        self.sent += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if self.measuring and user:
            self.user_total += 1
            self.user_5xx += status >= 500
            self.user_slow += slow


@dataclass
class Live:
    stack: Stack
    traffic: Traffic
    proof_time: float  # evaluation time for every proof query: just after traffic, alerts active

    @property
    def app_url(self) -> str:
        return self.stack.settings.app_url

    @property
    def prometheus_url(self) -> str:
        return self.stack.settings.prometheus_url

    @property
    def alertmanager_url(self) -> str:
        return self.stack.settings.alertmanager_url

    @property
    def app_log(self) -> Path:
        return self.stack.state / "logs" / "app.log"

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query; raises with Prometheus's error text if the expression does not parse."""
        response = requests.get(
            f"{self.prometheus_url}/api/v1/query",
            params={"query": expr, "time": str(at if at is not None else self.proof_time)},
            timeout=10,
        )
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _call(
    session: requests.Session, traffic: Traffic, method: str, url: str, *, user: bool = True, **kwargs: Any
) -> requests.Response:
    response = session.request(method, url, timeout=30, **kwargs)
    traffic.count(response.status_code, user=user)
    return response


def _wait_for_first_scrapes(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    query = f'count_over_time(up{{job="{endpoints.SERVICE_NAME}"}}[1m]) >= 2'
    while time.monotonic() < deadline:
        body = requests.get(f"{stack.settings.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
        if body.json()["data"]["result"]:
            return
        time.sleep(0.3)
    raise AssertionError("Prometheus did not scrape the service twice within 30 s")


def _every_request(session: requests.Session, traffic: Traffic, base: str) -> list[int]:
    """One request of every kind the proof needs; returns the ids of the tasks it created."""
    ids = []
    for i in range(12):
        created = _call(session, traffic, "POST", f"{base}{API}/tasks", json={"title": f"observability task {i}"})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    _call(session, traffic, "GET", f"{base}{API}/tasks/{ids[0]}")
    _call(session, traffic, "PATCH", f"{base}{API}/tasks/{ids[0]}", json={"status": "done"})
    _call(session, traffic, "DELETE", f"{base}{API}/tasks/{ids.pop()}")
    _call(session, traffic, "GET", f"{base}{API}/tasks")
    _call(session, traffic, "GET", f"{base}{API}/stats")
    _call(session, traffic, "GET", f"{base}/")
    _call(session, traffic, "GET", f"{base}{API}/tasks/987654321")  # 404
    _call(session, traffic, "POST", f"{base}{API}/tasks", json={"title": ""})  # 422
    _call(session, traffic, "GET", f"{base}/no/such/page", user=False)  # 404, route "unmatched"
    _call(session, traffic, "GET", f"{base}{endpoints.READYZ}", user=False)
    return ids


def drive(stack: Stack) -> Traffic:
    """Warm up every series, then every route good and bad, faults (errors, latency), a database outage."""
    base, traffic = stack.settings.app_url, Traffic()
    session = requests.Session()
    auth = {"Authorization": f"Bearer {FAULT_TOKEN}"}
    drill = f"{base}{endpoints.ADMIN_FAULTS}"

    # Warm-up. A labelled counter only exists once incremented and rate() cannot see the increments a
    # series was born with, so create every series (a 500 included) and let Prometheus scrape them.
    _wait_for_first_scrapes(stack)
    ids = _every_request(session, traffic, base)
    assert session.put(drill, json={f"{API}/tasks": {"error_ratio": 1.0}}, headers=auth, timeout=10).ok
    _call(session, traffic, "GET", f"{base}{API}/tasks")
    assert session.delete(drill, headers=auth, timeout=10).ok
    time.sleep(SCRAPE_PAUSE)
    traffic.measuring = True
    traffic.started = time.time()

    # Ordinary traffic, paced over several scrapes.
    for task_id in ids[1:]:
        _call(session, traffic, "GET", f"{base}{API}/tasks/{task_id}")
    for task_id in ids[1:6]:
        _call(session, traffic, "PATCH", f"{base}{API}/tasks/{task_id}", json={"status": "done"})
    _call(session, traffic, "DELETE", f"{base}{API}/tasks/{ids[-1]}")
    for _ in range(10):
        _call(session, traffic, "GET", f"{base}{API}/tasks")
        _call(session, traffic, "GET", f"{base}{API}/stats")
        _call(session, traffic, "GET", f"{base}/")
        time.sleep(0.1)
    for _ in range(4):
        _call(session, traffic, "GET", f"{base}{API}/tasks/987654321")
        _call(session, traffic, "POST", f"{base}{API}/tasks", json={"title": ""})
        _call(session, traffic, "GET", f"{base}/no/such/page", user=False)
        _call(session, traffic, "GET", f"{base}{endpoints.READYZ}", user=False)

    # Drill: half the list requests fail, every stats request is slow; paced over several scrapes.
    faults = {f"{API}/tasks": {"error_ratio": 0.5}, f"{API}/stats": {"latency_ms": SLOW_MS}}
    assert session.put(drill, json=faults, headers=auth, timeout=10).ok

    def slow_call(_: int) -> int:
        with requests.Session() as own:
            return own.get(f"{base}{API}/stats", timeout=30).status_code

    for _ in range(40):
        _call(session, traffic, "GET", f"{base}{API}/tasks")
        time.sleep(0.05)
    # Two at a time: the service has two sync workers, and a scrape must not wait past its 1 s timeout.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for status in pool.map(slow_call, range(30)):
            traffic.count(status, slow=True)
    assert session.delete(drill, headers=auth, timeout=10).ok

    # Outage: PostgreSQL stopped; reads answer 503, readiness fails, the pool counts errors. Paced, so
    # the series born in the outage are scraped while they still grow.
    assert stack.postgres is not None
    stack.postgres.stop()
    try:
        for _ in range(10):
            _call(session, traffic, "GET", f"{base}{API}/tasks")
            _call(session, traffic, "GET", f"{base}{endpoints.READYZ}", user=False)
            time.sleep(0.5)
    finally:
        stack.postgres.start()
    wait_http(f"{base}{endpoints.READYZ}", 30)
    for _ in range(5):
        _call(session, traffic, "GET", f"{base}{API}/tasks")
    return traffic


def wait_for(live_query: Any, expr: str, timeout: float) -> None:
    """Poll Prometheus (at the current time) until ``expr`` returns data."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live_query(expr, time.time()):
            return
        time.sleep(0.5)
    raise AssertionError(f"no data for {expr!r} after {timeout:.0f} s")


def alertmanager_status(url: str) -> dict[str, Any]:
    status: dict[str, Any] = requests.get(f"{url}/api/v2/status", timeout=10).json()
    return status


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    response = requests.post(
        f"{url}/api/v2/alerts", data=json.dumps(alerts), timeout=10, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
