"""`make run` supervises what it started: a part that dies is reported and restarted, a bounded number of times."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app import endpoints
from local.stack import embedded_postgres, remove_state
from local.supervise import RESTART_LIMIT, RESTART_WINDOW_S, Supervisor
from tests.conftest import ROOT, free_port

PORTS = ("APP_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT", "PG_PORT")
REPORTED_WITHIN_S = 5  # what `make run` promises between a death and its line in the terminal


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class StackRun:
    """`python -m local.stack run` in the background, its output read as it comes, with the time of each line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.state = Path(env["STACK_STATE_DIR"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.stack", "run"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._new_line = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for("Ctrl-C stops it", 90)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._new_line:
                self.lines.append((time.monotonic(), line))
                self._new_line.notify_all()
        with self._new_line:
            self._new_line.notify_all()

    def output(self) -> str:
        with self._new_line:
            return "".join(line for _, line in self.lines)

    def mark(self) -> int:
        with self._new_line:
            return len(self.lines)

    def wait_for(self, text: str, timeout: float, *, after: int = 0) -> tuple[float, str]:
        """The first line from ``after`` on that contains ``text``, and when it was printed."""
        deadline = time.monotonic() + timeout
        with self._new_line:
            while True:
                for at, line in self.lines[after:]:
                    if text in line:
                        return at, line
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    tail = "".join(line for _, line in self.lines[-40:])
                    raise AssertionError(f"no line with {text!r} within {timeout} s:\n{tail}")
                self._new_line.wait(left)

    def child_pid(self, name: str) -> int:
        return int(json.loads((self.state / "stack.json").read_text())["children"][name])

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        self.process.wait(60)
        self._reader.join(10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.output()


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["STACK_STATE_DIR"] = str(tmp_path / "state")
    env.update({name: str(free_port()) for name in PORTS})
    yield env
    remove_state(Path(env["STACK_STATE_DIR"]))


def _postmaster_pid(env: dict[str, str]) -> int:
    pg = embedded_postgres(Path(env["STACK_STATE_DIR"]), int(env["PG_PORT"]))
    return int((pg.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


def _kill_and_see_it_reported(run: StackRun, pid: int, part: str) -> int:
    """kill -9 ``pid``; assert ``part``'s death is in the terminal in time; return where the output was."""
    mark = run.mark()
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    reported, line = run.wait_for(f"{pid}) was killed by SIGKILL", REPORTED_WITHIN_S + 5, after=mark)
    assert line.startswith(f"make run: {part} ("), line
    assert reported - killed <= REPORTED_WITHIN_S, f"{part}'s death reported after {reported - killed:.1f} s"
    return mark


def _answers(url: str, timeout: float) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout} s")
        time.sleep(0.1)


@pytest.mark.slow  # `make run`'s whole stack
def test_a_killed_postgres_is_reported_restarted_and_keeps_its_data(stack_env: dict[str, str]) -> None:
    run = StackRun(stack_env)
    api = f"http://127.0.0.1:{stack_env['APP_PORT']}{endpoints.API_PREFIX}"
    try:
        task = requests.post(f"{api}/tasks", json={"title": "outlives a kill -9"}, timeout=5).json()
        old = _postmaster_pid(stack_env)
        mark = _kill_and_see_it_reported(run, old, "PostgreSQL")
        run.wait_for("PostgreSQL is back", 60, after=mark)
        assert _postmaster_pid(stack_env) != old
        # The app was not restarted: its pool reconnects to the new postmaster by itself.
        assert _answers(f"{api}/tasks/{task['id']}", 10).json()["title"] == "outlives a kill -9"
        assert _answers(f"http://127.0.0.1:{stack_env['APP_PORT']}/", 5).status_code == 200
    finally:
        out = run.stop()
    assert run.process.returncode == 0, out
    assert "restarting the app" not in out


@pytest.mark.slow  # `make run`'s whole stack
def test_a_killed_prometheus_or_app_is_restarted_and_ready_again(stack_env: dict[str, str]) -> None:
    run = StackRun(stack_env)
    try:
        old = run.child_pid("prometheus")
        mark = _kill_and_see_it_reported(run, old, "Prometheus")
        run.wait_for("Prometheus is back", 60, after=mark)
        assert run.child_pid("prometheus") != old
        assert _answers(f"http://127.0.0.1:{stack_env['PROMETHEUS_PORT']}/-/ready", 5).status_code == 200

        master = run.child_pid("app")
        mark = _kill_and_see_it_reported(run, master, "the app")
        run.wait_for("the app is back", 60, after=mark)
        assert run.child_pid("app") != master
        with pytest.raises(ProcessLookupError):  # no orphaned worker of the old master serves on
            os.killpg(master, 0)
        assert _answers(f"http://127.0.0.1:{stack_env['APP_PORT']}/", 5).status_code == 200
    finally:
        out = run.stop()
    assert run.process.returncode == 0, out
    for name in PORTS:
        assert not _listening(int(stack_env[name])), f"{name} still open after Ctrl-C"


@pytest.mark.slow  # `make run`'s whole stack
def test_a_part_that_keeps_dying_stops_the_stack(stack_env: dict[str, str]) -> None:
    run = StackRun(stack_env)
    try:
        for _ in range(RESTART_LIMIT):
            mark = _kill_and_see_it_reported(run, run.child_pid("alertmanager"), "Alertmanager")
            run.wait_for("Alertmanager is back", 60, after=mark)
        _kill_and_see_it_reported(run, run.child_pid("alertmanager"), "Alertmanager")
        run.process.wait(60)
    finally:
        out = run.stop()
    assert run.process.returncode == 1, out
    assert f"Alertmanager ended {RESTART_LIMIT + 1} times within 10 minutes" in out, out
    assert "stopping the stack" in out
    for name in PORTS:
        assert not _listening(int(stack_env[name])), f"{name} still open after the stack gave up"


class _Part:
    """A part that dies when told to; restarts always succeed."""

    name = "the part"
    log = "its log"

    def __init__(self) -> None:
        self.dead = False
        self.restarts = 0

    def pids(self) -> set[int]:
        return set()

    def reap(self) -> str | None:
        return "was killed by SIGKILL" if self.dead else None

    def restart(self) -> None:
        self.dead = False
        self.restarts += 1


def test_the_restart_bound_counts_only_ends_within_the_window() -> None:
    part, now = _Part(), [0.0]
    supervisor = Supervisor([part], out=io.StringIO(), clock=lambda: now[0])
    for _ in range(RESTART_LIMIT):
        part.dead = True
        assert supervisor.check() is None
        now[0] += 1
    assert part.restarts == RESTART_LIMIT

    # The first end has left the window: this one is restarted too.
    now[0] = RESTART_WINDOW_S + 1
    part.dead = True
    assert supervisor.check() is None
    assert part.restarts == RESTART_LIMIT + 1

    # Straight after, it is one end too many within the window.
    part.dead = True
    failure = supervisor.check()
    assert failure is not None and f"ended {RESTART_LIMIT + 1} times" in failure and "its log" in failure
    assert part.restarts == RESTART_LIMIT + 1
