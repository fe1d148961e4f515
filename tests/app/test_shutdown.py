"""SIGTERM under load: in-flight requests finish, acknowledged writes persist, gunicorn exits in time."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from app import endpoints
from local.stack import Stack
from tests.conftest import FAULT_TOKEN, execute

API = endpoints.API_PREFIX
GRACE = 10


def test_sigterm_lets_in_flight_requests_finish(served_app: Callable[..., Stack]) -> None:
    stack = served_app(
        workers=4,
        FAULT_INJECTION_ENABLED="true",
        FAULT_INJECTION_TOKEN=FAULT_TOKEN,
        GUNICORN_GRACEFUL_TIMEOUT=str(GRACE),
    )
    base = stack.settings.app_url
    auth = {"Authorization": f"Bearer {FAULT_TOKEN}"}
    # Slow writes: 1.5 s of injected latency before the insert, so they are in flight at SIGTERM.
    put = requests.put(
        f"{base}{endpoints.ADMIN_FAULTS}", json={f"{API}/tasks": {"latency_ms": 1500}}, headers=auth, timeout=5
    )
    assert put.status_code == 200

    def slow_create(i: int) -> requests.Response:
        return requests.post(f"{base}{API}/tasks", json={"title": f"in flight {i}"}, timeout=30)

    master = stack.children[-1].process
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(slow_create, i) for i in range(4)]
        time.sleep(0.5)  # every worker has accepted one request and is sleeping in it
        sent = time.monotonic()
        master.send_signal(signal.SIGTERM)
        responses = [f.result() for f in futures]
    master.wait(GRACE + 5)
    exited_after = time.monotonic() - sent

    assert [r.status_code for r in responses] == [201] * 4
    assert master.returncode == 0
    assert exited_after < GRACE
    ids = [r.json()["id"] for r in responses]
    url = stack.settings.database_url
    assert url is not None
    stored = {row[0] for row in execute(url, "SELECT id FROM tasks")}
    assert set(ids) <= stored  # every acknowledged write is there


def test_acknowledged_writes_survive_a_shutdown_under_steady_load(served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=2, GUNICORN_GRACEFUL_TIMEOUT=str(GRACE))
    base = stack.settings.app_url
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        session = requests.Session()
        i = 0
        while not stop.is_set():
            try:
                response = session.post(f"{base}{API}/tasks", json={"title": f"w{n}-{i}"}, timeout=10)
            except requests.RequestException:
                continue  # refused or reset while shutting down: not acknowledged
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    master = stack.children[-1].process
    master.send_signal(signal.SIGTERM)
    master.wait(GRACE + 5)
    stop.set()
    for thread in threads:
        thread.join(15)

    assert master.returncode == 0
    assert len(acknowledged) > 20
    url = stack.settings.database_url
    assert url is not None
    stored = {row[0] for row in execute(url, "SELECT id FROM tasks")}
    assert set(acknowledged) <= stored
