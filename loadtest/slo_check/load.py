"""The load: headless Locust (loadtest/runner.py) for the whole check, watched so that a Locust that
died reads as "could not measure", never as a quiet service.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadtest import runner
from loadtest.slo_check import NotMeasured


@dataclass
class Load:
    process: subprocess.Popen[bytes]
    log: Path

    def require_running(self, when: str) -> None:
        code = self.process.poll()
        if code is not None:
            raise NotMeasured(f"Locust exited {when} (exit code {code}); see {self.log}")


@contextmanager
def locust(host: str, out: Path, users: int, spawn_rate: float) -> Iterator[Load]:
    """Headless Locust for as long as the block runs, every user spawned before it starts."""
    with runner.headless(host, out, users=users, spawn_rate=spawn_rate, history=True, html=True) as process:
        load = Load(process, out / "locust.log")
        time.sleep(max(2.0, users / spawn_rate + 1))
        load.require_running("at start")
        yield load
