"""Where a loaded worker's time goes, by owner: py-spy on the gunicorn workers while wrk drives them.

`make bench` profiles (b), (c) and (p) this way; loadtest/cost.py measures the same layers in-process.
py-spy samples every worker's Python stack (``--full-filenames``, so that a file tells its package)
and each sample goes to the innermost frame that belongs to a known owner: the instrumentation
packages, the SDK, prometheus-client, logging, the service and its framework, gunicorn and gevent.
Samples in C code go to the Python frame that called it. One correction follows from that: the
psycopg2 instrumentation calls the driver's C ``execute`` itself, so a sample whose last Python frame
is its ``traced_execution`` is the query running, which an uninstrumented service spends in its own
frames: it goes to the service (a native profile, ``py-spy --native``, showed 95 % of those samples in
psycopg2's C code and 5 % in the wrapper's own lines).
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

SERVICE = "the service, Flask, Werkzeug, psycopg2"
# (owner, the pattern its frames' files match), innermost first wins; order matters where paths nest.
OWNERS: tuple[tuple[str, str], ...] = (
    ("span export (batch processor, OTLP encoding, HTTP)",
     r"sdk/_shared_internal|sdk/trace/export|exporter/otlp|opentelemetry/proto|google/protobuf|requests/|urllib3/"),
    ("Flask instrumentation (with its WSGI and semconv helpers)",
     r"instrumentation/flask/|instrumentation/wsgi/|instrumentation/utils\.py|instrumentation/_semconv|opentelemetry/util/http"),
    ("psycopg2 instrumentation (dbapi)", r"instrumentation/dbapi/|instrumentation/psycopg2/"),
    ("OpenTelemetry SDK and API (spans, attributes, context)",
     r"opentelemetry/sdk/|opentelemetry/trace/|opentelemetry/context/|opentelemetry/util/|opentelemetry/attributes"
     r"|opentelemetry/propagat|opentelemetry/baggage|instrumentation/logging"),
    ("Prometheus metrics", r"prometheus_client/|/app/metrics\.py|prometheus_flask_exporter"),
    ("logging (the access line)", r"/logging/__init__\.py|pythonjsonlogger|/app/logs\.py|loadtest/peer\.py"),
    (SERVICE,
     r"/flask/|werkzeug/|/app/|jinja2|itsdangerous|flask_wtf|psycopg2/|markupsafe|/json/"),
    ("gunicorn and gevent (HTTP parsing, sockets, greenlets)", r"gunicorn/|gevent/|greenlet"),
)  # fmt: skip
OTHER = "other (standard library, interpreter)"
_QUERY_RUNNING = re.compile(r"traced_execution \(.*instrumentation/dbapi/")
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in OWNERS)


class ProfileError(Exception):
    """py-spy is missing or recorded nothing."""


def attribute(raw: str) -> tuple[int, collections.Counter[str]]:
    """Samples in py-spy's raw (collapsed) output, and how many each owner takes."""
    total = 0
    owners: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        total += int(count)
        frames = stack.split(";")
        if _QUERY_RUNNING.search(frames[-1]):
            owners[SERVICE] += int(count)
            continue
        for frame in reversed(frames):
            owner = next((name for name, pattern in _COMPILED if pattern.search(frame)), None)
            if owner is not None:
                owners[owner] += int(count)
                break
        else:
            owners[OTHER] += int(count)
    return total, owners


def record(master_pid: int, load: list[str], seconds: int = 8, rate: int = 250) -> str:
    """py-spy every worker of ``master_pid`` for ``seconds`` while ``load`` (a wrk command) runs."""
    # The virtualenv's own py-spy when the venv is not on PATH (`.venv/bin/python -m loadtest.bench`).
    beside = Path(sys.executable).parent / "py-spy"
    binary = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
    if binary is None:
        raise ProfileError("py-spy not found (tests/requirements.txt pins it; make bench installs it)")
    workers = psutil.Process(master_pid).children()
    with tempfile.TemporaryDirectory(prefix="taskboard-profile-") as tmp:
        driver = subprocess.Popen(load, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        try:
            time.sleep(1)  # past the connection ramp
            spies = [_spy(binary, worker.pid, seconds, rate, Path(tmp)) for worker in workers]
            errors = [spy.communicate(timeout=seconds + 30)[1] for spy in spies]
        finally:
            driver.wait(seconds + 30)
        raw = "".join(path.read_text() for path in Path(tmp).glob("*.raw"))
    if not raw.strip():
        raise ProfileError(f"py-spy recorded no sample of pid {master_pid}'s workers: {b''.join(errors)[-300:]!r}")
    return raw


def _spy(binary: str, pid: int, seconds: int, rate: int, folder: Path) -> subprocess.Popen[bytes]:
    command = [binary, "record", "-p", str(pid), "-d", str(seconds), "-r", str(rate), "-f", "raw",
               "--nonblocking", "--full-filenames", "-o", str(folder / f"{pid}.raw")]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603


def shares(raw: str) -> dict[str, float]:
    """Each owner's share of the samples, in %, in OWNERS order."""
    total, owners = attribute(raw)
    return {name: round(100 * owners[name] / total, 1) for name in [*(n for n, _ in OWNERS), OTHER]}
