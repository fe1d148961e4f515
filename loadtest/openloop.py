"""Latency at a fixed offered rate, open loop: `make bench`'s answer to "how fast is it below saturation".

wrk's closed loop measures a server at saturation, where the p99 is set by Little's law (the
connections over the throughput), not by the service. Here h2load (Debian's nghttp2-client, C)
opens a new connection for every request, a fixed number every 10 ms, whatever the answers: a slow
answer does not slow the load down, so no coordinated omission. The service closes every
connection anyway (no keep-alive, app/gunicorn.conf.py), so one request per connection is how its
clients meet it. Latencies come from h2load's per-request log (microseconds), not from its summary.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PERIOD_MS = 10  # connections start in groups every 10 ms: evenly, not in a burst per second


class OpenLoopError(Exception):
    """h2load is missing, failed, or measured nothing."""


@dataclass(frozen=True)
class OpenLoop:
    rate: int  # requests offered per second
    seconds: int
    answered: int  # 2xx
    failed: int  # anything else, and requests that never got an answer
    p50_ms: float
    p99_ms: float


def percentile(sorted_values: list[int], q: float) -> float:
    """The nearest-rank percentile ``q`` (0–1) of ``sorted_values``."""
    rank = max(1, round(q * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def parse_log(text: str, offered: int) -> tuple[list[int], int]:
    """Durations (µs) of the 2xx answers in an h2load --log-file, and how many of ``offered`` failed."""
    durations = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and 200 <= int(fields[1]) < 300:
            durations.append(int(fields[2]))
    return sorted(durations), offered - len(durations)


def measure(url: str, rate: int, seconds: int) -> OpenLoop:
    """Offer ``rate`` requests per second to ``url`` for ``seconds``; p50 and p99 of the answers."""
    binary = shutil.which("h2load")
    if binary is None:
        raise OpenLoopError("h2load not found (the Debian package nghttp2-client; make bench installs it)")
    per_period = max(1, round(rate * PERIOD_MS / 1000))
    offered = per_period * (1000 // PERIOD_MS) * seconds
    with tempfile.TemporaryDirectory(prefix="taskboard-openloop-") as tmp:
        log = Path(tmp) / "requests.log"
        result = subprocess.run(  # noqa: S603
            [binary, "--h1", "-n", str(offered), "-c", str(offered), "-r", str(per_period),
             "--rate-period", f"{PERIOD_MS}ms", "-T", "10s", "--log-file", str(log), url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0 or not log.exists():
            raise OpenLoopError(f"h2load against {url} failed: {(result.stderr or result.stdout)[-500:]}")
        durations, failed = parse_log(log.read_text(), offered)
    if not durations:
        raise OpenLoopError(f"h2load got no 2xx answer from {url} in {seconds} s at {rate} req/s")
    return OpenLoop(
        rate=per_period * (1000 // PERIOD_MS),
        seconds=seconds,
        answered=len(durations),
        failed=failed,
        p50_ms=round(percentile(durations, 0.50) / 1000, 2),
        p99_ms=round(percentile(durations, 0.99) / 1000, 2),
    )
