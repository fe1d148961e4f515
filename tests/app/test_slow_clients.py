"""Slow clients cannot take the service down: hundreds of them, under the real gunicorn, cost others nothing.

A client that sends one header byte every second (slowloris), or a body one byte at a time, holds
whatever reads its request. With sync workers two such clients made the service unavailable; no
load balancer is assumed in front (the local stack has none, and one that streams request bodies
passes slow bodies through).
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from app import endpoints
from local.stack import Stack

SLOW_HEADER_CLIENTS = 150
SLOW_BODY_CLIENTS = 100
QUIET_SECONDS = 6.0
LOADED_SECONDS = 12.0
# The issue's bound: normal requests' p99 under attack within 3x the quiet p99. Quiet p99 on loopback
# is a few milliseconds, where one scheduler hiccup on 2 shared cores is of the same size; the floor
# keeps the bound meaningful (sync workers fail it by seconds, not milliseconds).
P99_FACTOR = 3.0
P99_FLOOR_S = 0.025


@dataclass
class Traffic:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    health_failures: list[str] = field(default_factory=list)


def _normal_traffic(base: str, task_url: str, seconds: float) -> Traffic:
    """One sequential user of the API and a probe of /healthz every 0.5 s, for ``seconds``."""
    traffic = Traffic()
    stop = time.monotonic() + seconds

    def probe() -> None:
        while time.monotonic() < stop:
            try:
                status = requests.get(f"{base}{endpoints.HEALTHZ}", timeout=2).status_code
                if status != 200:
                    traffic.health_failures.append(f"HTTP {status}")
            except requests.RequestException as exc:
                traffic.health_failures.append(type(exc).__name__)
            time.sleep(0.5)

    prober = threading.Thread(target=probe)
    prober.start()
    with requests.Session() as session:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                status = session.get(task_url, timeout=5).status_code
                if status != 200:
                    traffic.failures.append(f"HTTP {status}")
            except requests.RequestException as exc:
                traffic.failures.append(type(exc).__name__)
                continue
            traffic.latencies.append(time.perf_counter() - started)
    prober.join()
    return traffic


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else float("inf")


def _slow_clients(port: int, stop: threading.Event) -> Callable[[], int]:
    """Open the slow connections and feed each one byte a second until ``stop``; return how many held."""
    sockets: list[socket.socket] = []
    for n in range(SLOW_HEADER_CLIENTS + SLOW_BODY_CLIENTS):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if n < SLOW_HEADER_CLIENTS:
            sock.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        else:
            sock.sendall(
                b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 4000\r\n\r\n{"
            )
        sockets.append(sock)

    def feed() -> None:
        while not stop.wait(1.0):
            for sock in sockets:
                # The server may close a connection it gave up on: that is allowed.
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    feeder = threading.Thread(target=feed)
    feeder.start()

    def finish() -> int:
        stop.set()
        feeder.join()
        held = 0
        for sock in sockets:
            try:
                sock.send(b"a")
                held += 1
            except OSError:
                pass
            sock.close()
        return held

    return finish


def test_hundreds_of_slow_clients_cost_normal_traffic_nothing(served_app: Callable[..., Stack]) -> None:
    stack = served_app()
    base = stack.settings.app_url
    created = requests.post(f"{base}{endpoints.API_PREFIX}/tasks", json={"title": "read while attacked"}, timeout=5)
    assert created.status_code == 201
    task_url = f"{base}{endpoints.API_PREFIX}/tasks/{created.json()['id']}"

    quiet = _normal_traffic(base, task_url, QUIET_SECONDS)
    assert not quiet.failures and not quiet.health_failures, (quiet.failures, quiet.health_failures)

    stop = threading.Event()
    finish = _slow_clients(stack.settings.app_port, stop)
    try:
        loaded = _normal_traffic(base, task_url, LOADED_SECONDS)
    finally:
        held = finish()

    quiet_p99, loaded_p99 = _p99(quiet.latencies), _p99(loaded.latencies)
    bound = max(P99_FACTOR * quiet_p99, P99_FLOOR_S)
    print(
        f"\nslow clients: {SLOW_HEADER_CLIENTS} slow-header + {SLOW_BODY_CLIENTS} slow-body,"
        f" {held} still held at the end;"
        f" normal requests quiet {len(quiet.latencies)} p99 {quiet_p99 * 1000:.1f} ms,"
        f" under attack {len(loaded.latencies)} p99 {loaded_p99 * 1000:.1f} ms (bound {bound * 1000:.1f} ms),"
        f" failures {len(loaded.failures)}, /healthz failures {len(loaded.health_failures)}"
    )
    assert not loaded.failures, loaded.failures[:10]
    assert not loaded.health_failures, loaded.health_failures[:10]
    assert loaded_p99 <= bound
    assert len(loaded.latencies) > 100  # the attack window really served traffic
