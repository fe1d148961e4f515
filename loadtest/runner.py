"""Locust as a child process: the one way the SLO gate and the HPA test run it headless."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"


@contextmanager
def headless(
    host: str, out: Path, *, users: int, spawn_rate: float, history: bool = False, html: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """Locust against ``host`` for as long as the block runs; its log and CSV (and HTML) land in ``out``."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", host, "--users", str(users), "--spawn-rate", str(spawn_rate), "--csv", str(out / "locust"),
    ]  # fmt: skip
    if history:
        command.append("--csv-full-history")
    if html:
        command += ["--html", str(out / "locust.html")]
    with (out / "locust.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        yield process
    finally:
        if process.poll() is None:
            # SIGINT, not SIGTERM: on SIGTERM Locust 2.x quits without writing its HTML report.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
