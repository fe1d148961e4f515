"""CPU per request of the realistic user mix, and what it means for a pod: `make bench`'s last step.

The Locust user mix (loadtest/locustfile.py) runs against the fully instrumented service under the
production gunicorn config; the gunicorn workers' CPU time (psutil) and the requests they answered
(/metrics) over the same window give CPU milliseconds per request. From that:

    requests/s one worker sustains at a utilisation u  =  u / (CPU seconds per request)

Utilisation, not 100 %: queueing makes latency climb steeply as a worker nears saturation, and
the latency SLO (99 % under the threshold) must hold at the HPA's target. docs/capacity.md turns
these numbers into the HPA target, the replica bounds and the database connection budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import endpoints
from app import metric_names as names
from loadtest import runner

UTILISATIONS = (0.5, 0.7, 0.9)


@dataclass(frozen=True)
class Capacity:
    requests: int
    seconds: float
    cpu_seconds: float
    workers: int

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else float("nan")

    def per_worker(self, utilisation: float) -> float:
        """Requests per second one worker (one core) sustains at ``utilisation``."""
        return utilisation * 1000 / self.cpu_ms_per_request


def _answered(app_url: str) -> float:
    text = requests.get(f"{app_url}{endpoints.METRICS}", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == names.HTTP_REQUESTS.total and sample.labels[names.ROUTE] not in endpoints.OPERATIONAL_PATHS
    )


def _workers_cpu(master_pid: int) -> float:
    total = 0.0
    for child in psutil.Process(master_pid).children():
        times = child.cpu_times()
        total += times.user + times.system
    return total


def measure(app_url: str, master_pid: int, workers: int, out: Path, seconds: float = 20, users: int = 20) -> Capacity:
    """Run the user mix for ``seconds`` and measure the workers' CPU per answered request."""
    out.mkdir(parents=True, exist_ok=True)
    with runner.headless(app_url, out, users=users, spawn_rate=users):
        time.sleep(3)  # every user spawned and past its first requests
        cpu_before, answered_before, started = _workers_cpu(master_pid), _answered(app_url), time.monotonic()
        time.sleep(seconds)
        cpu_after, answered_after, ended = _workers_cpu(master_pid), _answered(app_url), time.monotonic()
    return Capacity(
        requests=round(answered_after - answered_before),
        seconds=round(ended - started, 1),
        cpu_seconds=round(cpu_after - cpu_before, 3),
        workers=workers,
    )
