"""`make run`'s supervision: it watches what it started, says when a part dies, and restarts it a bounded
number of times before stopping the whole stack with exit 1.

Only the `run` command supervises (``python -m local.stack run`` calls :func:`run`); the SLO gate
(loadtest/slo_check/) drives a :class:`~local.stack.Stack` without it, because its drills stop
PostgreSQL on purpose.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from local.postgres import EmbeddedPostgres, PostgresError
from local.stack import UP_MESSAGE, Child, Stack, StackError, StackSettings

# A part that dies now and then (the OOM killer, a stray kill) should just come back; one that dies
# again and again has a cause no restart fixes (a broken config, a full disk, something killing it),
# and restarting it forever would hide that behind a stack that seems up. Three restarts within ten
# minutes tells the two apart: occasional deaths are restarted, a fourth within the window stops the
# stack so that someone looks at the cause.
RESTART_LIMIT = 3
RESTART_WINDOW_S = 600.0
POLL_INTERVAL_S = 0.5  # a death is reported within a second, well inside the 5 s promised
_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def adopt_orphans(enabled: bool = True) -> bool:
    """Become (or stop being) the reaper of our descendants' orphans (Linux); False where that is not possible.

    pg_ctl starts the postmaster and exits, so the postmaster is nobody's child: once it dies it stays
    a zombie until some parent reaps it, os.kill(pid, 0) and pg_ctl status still find it, and
    PostgreSQL will not start again while its lock file names a pid that exists. PID 1 on this
    project's machines reaps nothing (measured: a killed postmaster stayed a zombie), so whoever runs
    PostgreSQL adopts it, and can then wait for it and learn how it ended. The same goes for the
    orphans a dead part leaves: PostgreSQL's backends, gunicorn's workers.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def how_it_ended(exit_code: int) -> str:
    """An exit code as subprocess gives it (negative: the signal that killed it), in words."""
    if exit_code < 0:
        try:
            return f"was killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"was killed by signal {-exit_code}"
    return f"exited with status {exit_code}"


def remove_group(pgid: int, timeout: float = 5) -> None:
    """Kill what is left of the process group ``pgid`` and reap the members we adopted.

    Used on a dead part's group: gunicorn's workers outlive their master for a while, still serving
    and holding the port a new master must bind, with nothing left to time them out or restart them.
    """
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-pgid, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass  # none of the group is our child (any more)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


class Part(Protocol):
    """One supervised part of the stack."""

    name: str
    log: str  # where to look when it keeps dying

    def pids(self) -> set[int]:
        """The processes whose end this part reads itself (the supervisor must not reap them)."""

    def reap(self) -> str | None:
        """None while it runs; once it has ended, how (after clearing what it left behind)."""

    def restart(self) -> None:
        """Start it again and wait until it is ready; raise StackError or PostgresError if it is not."""


class ChildPart:
    """A process the stack spawned itself: gunicorn's master, Prometheus, Alertmanager."""

    def __init__(self, stack: Stack, child: Child, name: str, start: Callable[[], None]) -> None:
        self.stack = stack
        self.child = child
        self.name = name
        self.log = str(child.log_path or "the lines above")
        self._start = start

    def pids(self) -> set[int]:
        return {self.child.process.pid}

    def reap(self) -> str | None:
        code = self.child.process.poll()
        if code is None:
            return None
        remove_group(self.child.process.pid)
        return f"(pid {self.child.process.pid}) {how_it_ended(code)}"

    def restart(self) -> None:
        children = self.stack.children
        at = children.index(self.child)
        children.remove(self.child)
        self._start()  # appends the new child
        # Back in its place: stop() goes newest first, so it still stops the app before its database.
        self.child = children.pop()
        children.insert(at, self.child)
        self.stack._write_state()  # stack.json names the new pid


class PostgresPart:
    """The embedded PostgreSQL the stack started: not a child, so watched through its postmaster's pid."""

    name = "PostgreSQL"

    def __init__(self, pg: EmbeddedPostgres) -> None:
        self.pg = pg
        self.log = str(pg.log_file)
        self.pid = self._postmaster_pid()

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.pg.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def pids(self) -> set[int]:
        return set() if self.pid is None else {self.pid}

    def reap(self) -> str | None:
        # One small file read and one system call per poll; pg_ctl status would spawn a process.
        pid = self._postmaster_pid()
        if pid is not None:
            self.pid = pid
        if self.pid is not None:
            try:
                reaped, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass  # not adopted (no subreaper on this system): see below
            else:
                if reaped == 0:
                    return None
                # Its backends are in sessions of their own and exit once they see it gone; the
                # supervisor reaps them as adopted orphans.
                return f"(postmaster pid {self.pid}) {how_it_ended(os.waitstatus_to_exitcode(status))}"
        if pid is None:
            # No lock file (a shutdown removes it) or an unreadable one: in doubt, ask pg_ctl.
            return None if self.pg.running() else "stopped (its postmaster.pid is gone: it was shut down)"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"(postmaster pid {pid}) is gone; how it ended is unknown (see {self.log})"
        except PermissionError:
            pass  # it exists, as another user
        return None

    def restart(self) -> None:
        self.pg.start()
        self.pid = self._postmaster_pid()


class Supervisor:
    """Reports a part that ended and restarts it, at most RESTART_LIMIT times within RESTART_WINDOW_S."""

    def __init__(
        self,
        parts: Sequence[Part],
        *,
        adopted: bool = False,
        out: IO[str] = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.parts = list(parts)
        self.adopted = adopted  # we are the subreaper (adopt_orphans): orphans are ours to reap
        self._out = out
        self._clock = clock
        self._ends: dict[str, deque[float]] = {part.name: deque() for part in self.parts}

    @classmethod
    def of(cls, stack: Stack, *, adopted: bool) -> Supervisor:
        """The parts ``stack`` started, database first: the app's readiness needs it."""
        parts: list[Part] = []
        if stack._started_postgres and stack.postgres is not None:  # a database found running is not ours
            parts.append(PostgresPart(stack.postgres))
        starts: dict[str, tuple[str, Callable[[], None]]] = {
            "alertmanager": ("Alertmanager", stack.start_alertmanager),
            "app": ("the app", lambda: stack.start_app(log_to_terminal=True)),
            "prometheus": ("Prometheus", stack.start_prometheus),
        }
        for child in stack.children:
            name, start = starts[child.name]
            parts.append(ChildPart(stack, child, name, start))
        return cls(parts, adopted=adopted)

    def _say(self, message: str) -> None:
        print(f"make run: {message}", file=self._out, flush=True)

    def check(self) -> str | None:
        """Look at every part once and restart the ones that ended; say why the stack must stop, or None."""
        for part in self.parts:
            try:
                how = part.reap()
            except PostgresError as exc:  # pg_ctl status, asked in doubt, failed
                return f"{part.name} could not be checked: {exc}"
            if how is None:
                continue
            self._say(f"{part.name} {how}")
            now = self._clock()
            ends = self._ends[part.name]
            ends.append(now)
            while now - ends[0] > RESTART_WINDOW_S:
                ends.popleft()
            if len(ends) > RESTART_LIMIT:
                return (
                    f"{part.name} ended {len(ends)} times within {RESTART_WINDOW_S / 60:.0f} minutes, more "
                    f"than the {RESTART_LIMIT} restarts allowed; stopping the stack (its log: {part.log})"
                )
            self._say(
                f"restarting {part.name} (restart {len(ends)} of {RESTART_LIMIT} allowed "
                f"within {RESTART_WINDOW_S / 60:.0f} minutes)"
            )
            try:
                part.restart()
            except (StackError, PostgresError) as exc:
                return f"{part.name} could not be restarted; stopping the stack: {exc}"
            self._say(f"{part.name} is back")
        if self.adopted:
            self._reap_adopted()
        return None

    def _reap_adopted(self) -> None:
        """Reap the orphans we adopted (a dead postmaster's backends), never a part's own process."""
        ours = set().union(*(part.pids() for part in self.parts))
        while True:
            try:
                waitable = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if waitable is None or waitable.si_pid in ours:
                return  # a part's own end is read by its next reap()
            os.waitpid(waitable.si_pid, 0)

    def close(self, timeout: float = 2) -> None:
        """Once the stack has stopped: reap what is left (the postmaster), so no zombie outlives `make run`."""
        deadline = time.monotonic() + timeout
        while self.adopted:
            try:
                if os.waitpid(-1, os.WNOHANG)[0]:
                    continue
            except ChildProcessError:
                return
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def run(settings: StackSettings) -> int:
    stack = Stack(settings)
    stopping = False

    def _stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    adopted = adopt_orphans()  # before PostgreSQL starts, so its postmaster becomes ours
    try:
        stack.start(app_logs_to_terminal=True)
    except StackError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    print(f"\n{UP_MESSAGE} (state in {settings.state_dir}):\n{stack.urls()}\n\nCtrl-C stops it.", flush=True)
    supervisor = Supervisor.of(stack, adopted=adopted)
    status = 0
    try:
        while not stopping:
            failure = supervisor.check()
            if failure is not None:
                print(f"make run: {failure}", file=sys.stderr, flush=True)
                status = 1
                break
            time.sleep(POLL_INTERVAL_S)
    finally:
        print("\nstopping the local stack…", flush=True)
        stack.stop()
        supervisor.close()
    return status
