"""The stack under test: the one `make run` serves, or a fresh one of the gate's own (local/stack.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from app import endpoints
from app.config import DEFAULT_WORKERS
from loadtest.slo_check import NotMeasured
from local.postgres import EmbeddedPostgres, PostgresError
from local.stack import Stack, StackError, StackSettings, free_port, remove_state, wait_http

# The gate's own stack looks often, so alerts and SLIs settle within seconds.
SCRAPE_INTERVAL = "1s"
EVALUATION_INTERVAL = "1s"
READY_SECONDS = 30


@dataclass
class Target:
    """The running stack: URLs, how to stop and start its database, how to inject faults."""

    app_url: str
    prometheus_url: str
    alertmanager_url: str
    scrape_interval: str
    evaluation_interval: str
    fault_token: str
    postgres: EmbeddedPostgres | None
    reused: bool


@contextmanager
def target(faults: Mapping[str, Any] | None, own_state: Path, run_state: Path) -> Iterator[Target]:
    """The stack `make run` serves from ``run_state`` if it is up, else a fresh one in ``own_state``.

    Faults to start with always mean a fresh stack: they are written before the service starts, as a
    build that left fault injection on would have them, and a stack someone is using must not get them.
    """
    reused = None if faults is not None else running_stack(run_state)
    if reused is not None:
        print(f"slo-check: using the stack make run serves at {reused.app_url}", file=sys.stderr)
        _wait_ready(reused)
        yield reused
        return
    with own_stack(faults, own_state) as fresh:
        _wait_ready(fresh)
        yield fresh


def running_stack(state_dir: Path) -> Target | None:
    """The stack `make run` serves, if it is up and has the drill switch on."""
    path = state_dir / "stack.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        app_url, prometheus_url = state["app_url"], state["prometheus_url"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotMeasured(f"{path}: not the state of a running stack ({exc!r}); remove it or run make run") from None
    try:
        requests.get(f"{app_url}{endpoints.HEALTHZ}", timeout=2).raise_for_status()
        requests.get(f"{prometheus_url}/-/ready", timeout=2).raise_for_status()
    except requests.RequestException:
        return None  # left behind by a stack that stopped: the gate starts its own
    if not state.get("fault_token_file"):
        return None
    pg = state.get("embedded_postgres")
    try:
        return Target(
            app_url=app_url,
            prometheus_url=prometheus_url,
            alertmanager_url=state["alertmanager_url"],
            scrape_interval=state["scrape_interval"],
            evaluation_interval=state["evaluation_interval"],
            fault_token=_token(Path(state["fault_token_file"])),
            postgres=EmbeddedPostgres(Path(pg["requested_dir"]), int(pg["port"])) if pg else None,
            reused=True,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NotMeasured(f"{path}: not the state of a running stack ({exc!r})") from None


@contextmanager
def own_stack(faults: Mapping[str, Any] | None, state_dir: Path) -> Iterator[Target]:
    """A fresh stack on free ports under ``state_dir`` (wiped first), stopped afterwards."""
    try:
        remove_state(state_dir)
        state_dir.mkdir(parents=True)
        if faults:
            # What a build with fault injection left on looks like: faults from the first request.
            (state_dir / "faults.json").write_text(json.dumps(faults))
    except (OSError, PostgresError) as exc:
        raise NotMeasured(f"{state_dir}: cannot prepare the stack's state ({exc})") from None
    settings = StackSettings(
        state_dir=state_dir,
        app_port=free_port(),
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        pg_port=free_port(),
        scrape_interval=SCRAPE_INTERVAL,
        evaluation_interval=EVALUATION_INTERVAL,
        seed=True,
        # The production worker count; a request delayed by the latency drill waits in a greenlet
        # and holds no worker (app/worker.py), so the drill's slow requests add up quickly.
        workers=DEFAULT_WORKERS,
        app_env={"LOG_LEVEL": "WARNING"},  # the access log of thousands of requests helps no one here
    )
    stack = Stack(settings, out=sys.stderr)
    try:
        stack.start()  # stops what it started if a part fails
    except (StackError, PostgresError, OSError) as exc:
        raise NotMeasured(f"the stack did not start: {one_line(str(exc))}") from None
    try:
        yield Target(
            app_url=settings.app_url,
            prometheus_url=settings.prometheus_url,
            alertmanager_url=settings.alertmanager_url,
            scrape_interval=settings.scrape_interval,
            evaluation_interval=settings.evaluation_interval,
            fault_token=_token(state_dir / "fault_token"),
            postgres=stack.postgres,
            reused=False,
        )
    finally:
        stack.stop()


def one_line(message: str) -> str:
    """A StackError as one line: its first, then where the rest is (a log) or its last (a command's error).

    local/stack.py adds the tail of a part's log, or a failed command's whole output, after a newline.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 1:
        return message.strip()
    first = lines[0].rstrip(":")
    if lines[1].startswith("last lines of "):
        return f"{first} (log: {lines[1].removeprefix('last lines of ').rstrip(':')})"
    return f"{first}: {lines[-1]}"


def _token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise NotMeasured(f"{path}: cannot read the fault-injection token ({exc.strerror})") from None


def _wait_ready(stack: Target) -> None:
    try:
        wait_http(f"{stack.app_url}{endpoints.READYZ}", READY_SECONDS)
    except StackError as exc:
        raise NotMeasured(f"the service is not ready: {exc}") from None
