"""The two test tiers: `make test-fast` runs every test not marked ``slow``; `make test` runs them all.

A test is slow when it needs more than `make test-fast` installs (the virtualenv: no Debian package,
no checkov virtualenv) or starts more than PostgreSQL: a server, a browser, a container, a scanner.
Tests that use the embedded PostgreSQL in-process (Flask's test client) are fast.

Two rules keep the fast tier honest, so that a new slow test cannot land in it unnoticed:

- at collection, a test that uses a fixture declared with ``@slow_fixture`` is marked ``slow``, and
  any other slow test carries ``@pytest.mark.slow``;
- at run time, in both tiers, a test that is not marked ``slow`` and still starts a slow program fails,
  naming the program. The ``subprocess.Popen`` audit event sees what the test process starts;
  stand-ins for the Debian tools, first on PATH, see what its scripts start (jq in a workflow script,
  Graphviz's dot under the diagram).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])

# Programs from Debian packages (local/install-debian-packages.sh installs them for `make test`, never
# for `make test-fast`): program -> why it is slow.
DEBIAN_PROGRAMS = {
    "prometheus": "the Prometheus server (Debian package prometheus)",
    "promtool": "Prometheus's promtool (Debian package prometheus)",
    "prometheus-alertmanager": "the Alertmanager server (Debian package prometheus-alertmanager)",
    "amtool": "Alertmanager's amtool (Debian package prometheus-alertmanager)",
    "podman": "a container engine (Debian package podman)",
    "buildah": "a container build (Debian package buildah)",
    "runc": "a container runtime (Debian package runc)",
    "debootstrap": "a Debian base image build (Debian package debootstrap)",
    "chromium": "a browser (Debian package chromium)",
    "dot": "Graphviz (Debian package graphviz)",
    "jq": "jq (Debian package jq)",
    "h2load": "a load generator (Debian package nghttp2-client)",
    "wrk": "a load generator (Debian package wrk)",
}
# Programs from the virtualenvs that serve, load, scan or build.
VENV_PROGRAMS = {
    "gunicorn": "the service under gunicorn",
    "locust": "a load generator (Locust)",
    "checkov": "the checkov scanner (its own virtualenv)",
    "trivy": "the trivy scanner",
    "py-spy": "a profiler attached to a loaded worker",
    "docker": "a container engine",
}
# Python modules that serve or load when run with ``-m`` (by python, or by a wrapper such as
# opentelemetry-instrument). Scripts that start the Debian programs are caught by their stand-ins.
SLOW_MODULES = {
    "gunicorn": "the service under gunicorn",
    "locust": "a load generator (Locust)",
}

SLOW_REASON = "slow_reason"  # the attribute @slow_fixture sets on a fixture function


def slow_fixture(reason: str) -> Callable[[F], F]:
    """Declare a fixture slow (put it under ``@pytest.fixture``): every test that uses it is marked ``slow``."""

    def declare(function: F) -> F:
        setattr(function, SLOW_REASON, reason)
        return function

    return declare


def slow_program(executable: object, args: object) -> str | None:
    """Why starting ``args`` (as ``subprocess.Popen`` got them) is slow, or None when it is not."""
    if isinstance(args, str | bytes):
        argv = shlex.split(os.fsdecode(args))  # a shell command line
    elif isinstance(args, os.PathLike):
        argv = [os.fsdecode(args)]
    else:
        argv = [os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in args]
    program = os.fsdecode(executable) if isinstance(executable, str | bytes | os.PathLike) else (argv or [""])[0]
    name = Path(program).name
    if "playwright" in Path(program).parts:
        return "a browser (Playwright's driver)"
    modules = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m" and argv[i + 1] in SLOW_MODULES]
    if modules:
        return f"-m {modules[0]}: {SLOW_MODULES[modules[0]]}"
    if name in DEBIAN_PROGRAMS or name in VENV_PROGRAMS:
        return f"{name}: {DEBIAN_PROGRAMS.get(name) or VENV_PROGRAMS[name]}"
    return None


# -- collection ------------------------------------------------------------------------------------


def _slow_fixtures(item: pytest.Item) -> list[str]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return [
        f"{name}: {getattr(definition.func, SLOW_REASON)}"
        for name in item.fixturenames  # every fixture the test needs, directly or through others
        for definition in info.name2fixturedefs.get(name, ())
        if hasattr(definition.func, SLOW_REASON)
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reasons = _slow_fixtures(item)
        if reasons and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow(reason="; ".join(reasons)))


# -- run time --------------------------------------------------------------------------------------


class _Guard:
    """Refuses slow programs to the unmarked test that is running (None between tests and for slow ones)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pytest-tiers-"))
        self.record = self.folder / "started"
        for name, why in DEBIAN_PROGRAMS.items():
            stand_in = self.folder / name
            stand_in.write_text(
                "#!/bin/sh\n"
                f"echo {shlex.quote(f'{name}: {why}')} >> {shlex.quote(str(self.record))}\n"
                f"echo {shlex.quote(f'{name} is refused to a test not marked slow (tests/tiers.py)')} >&2\n"
                "exit 127\n"
            )
            stand_in.chmod(0o755)
        self.item: pytest.Item | None = None
        self.started: list[str] = []

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "subprocess.Popen" or self.item is None:
            return
        reason = slow_program(args[0], args[1])
        if reason is not None:
            self.started.append(reason)
            raise SlowProgramError(f"{self.item.nodeid} is not marked slow and starts {reason}")

    def take(self) -> list[str]:
        """What the running test started since the last call: through Python, and through the stand-ins."""
        started, self.started = self.started, []
        if self.record.exists():
            started += self.record.read_text().splitlines()
            self.record.unlink()
        return started


class SlowProgramError(RuntimeError):
    """A test outside the slow tier started a slow program."""


_guard: _Guard | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _guard
    _guard = _Guard()
    sys.addaudithook(_guard.audit)  # for good: an audit hook cannot be removed


def pytest_unconfigure(config: pytest.Config) -> None:
    global _guard
    if _guard is not None:
        shutil.rmtree(_guard.folder, ignore_errors=True)
        _guard.item = None  # its audit hook stays installed, and does nothing from now on
        _guard = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    if _guard is None or item.get_closest_marker("slow") is not None:
        return (yield)
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{_guard.folder}{os.pathsep}{path}"
    _guard.take()
    _guard.item = item
    try:
        return (yield)
    finally:
        _guard.item = None
        os.environ["PATH"] = path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if _guard is None or _guard.item is not item:
        return report
    started = _guard.take()
    if started:
        message = (
            f"{item.nodeid} is not marked slow, yet it started:\n"
            + "".join(f"  - {reason}\n" for reason in dict.fromkeys(started))
            + "Mark it @pytest.mark.slow (or give it a fixture declared with @slow_fixture): "
            + "`make test-fast` installs only the virtualenv and starts nothing but PostgreSQL (tests/tiers.py)."
        )
        if report.failed:  # keep what else went wrong (the refusal's traceback, often) below the reason
            message = f"{message}\n\n{report.longreprtext}"
        report.outcome = "failed"
        report.longrepr = message
    return report
