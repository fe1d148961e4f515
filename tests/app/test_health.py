"""Liveness never touches the database; readiness follows PostgreSQL down and back up, and shutdown."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests
from flask import Flask

from app import endpoints
from app import metric_names as names
from app.migrate import upgrade
from local.postgres import EmbeddedPostgres
from local.stack import Stack
from tests.app.test_metrics import samples
from tests.conftest import ROOT, app_config

API = endpoints.API_PREFIX


def test_healthz_needs_no_database_and_readyz_says_why_without_the_database_s_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app import create_app

    app = create_app(app_config("postgresql://nobody@127.0.0.1:1/nothing"))
    client = app.test_client()
    assert client.get(endpoints.HEALTHZ).status_code == 200
    for _ in range(3):
        ready = client.get(endpoints.READYZ)
        assert ready.status_code == 503
        assert ready.get_json() == {"status": "unavailable", "reason": "database unavailable"}
    # libpq's own words reach the operator's log, once, not the client.
    logged = [line for line in capsys.readouterr().out.splitlines() if "readiness: database unavailable" in line]
    assert len(logged) == 1, logged
    assert "Connection refused" in logged[0]


def test_readyz_turns_503_when_shutting_down(app: Flask) -> None:
    client = app.test_client()
    assert client.get(endpoints.READYZ).status_code == 200
    app.extensions["health"].shutting_down()
    response = client.get(endpoints.READYZ)
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "shutting down"}
    assert client.get(endpoints.HEALTHZ).status_code == 200


def _wait_for(url: str, status: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if requests.get(url, timeout=timeout).status_code == status:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer {status} within {timeout} s")


def test_readiness_follows_a_database_outage_and_recovers_without_restart(
    own_postgres: EmbeddedPostgres, served_app: Callable[..., Stack]
) -> None:
    url = own_postgres.ensure_database("outage")
    upgrade(url)
    stack = served_app(workers=2, database_url=url)
    base = stack.settings.app_url
    app_pid = stack.children[-1].process.pid
    created = requests.post(f"{base}{API}/tasks", json={"title": "before the outage"}, timeout=5).json()
    assert requests.get(f"{base}{endpoints.READYZ}", timeout=5).status_code == 200

    own_postgres.stop(mode="fast")
    stopped_at = time.monotonic()
    took = _wait_for(f"{base}{endpoints.READYZ}", 503, 2.0)
    assert took <= 2.0
    assert requests.get(f"{base}{endpoints.READYZ}", timeout=5).json()["reason"] == "database unavailable"
    assert requests.get(f"{base}{endpoints.HEALTHZ}", timeout=5).status_code == 200

    refused = requests.post(f"{base}{API}/tasks", json={"title": "during the outage"}, timeout=5)
    assert refused.status_code == 503
    assert refused.json()["error"] == "database_unavailable"
    assert refused.headers["Retry-After"] == "1"
    assert requests.get(f"{base}{API}/stats", timeout=5).status_code == 503
    assert time.monotonic() - stopped_at < 10

    own_postgres.start()
    _wait_for(f"{base}{endpoints.READYZ}", 200, 10.0)
    # Once ready, nothing is refused: writes first, before any read could replace a pooled connection
    # that died with the server (one closed while idle is dropped before a statement is sent on it;
    # tests/app/test_db.py proves that case alone), then reads.
    writes = [requests.post(f"{base}{API}/tasks", json={"title": f"after {i}"}, timeout=5) for i in range(4)]
    assert [w.status_code for w in writes] == [201] * 4, [w.text for w in writes]
    assert requests.get(f"{base}{API}/tasks/{created['id']}", timeout=5).json()["title"] == "before the outage"
    statuses = [requests.get(f"{base}{API}/stats", timeout=5).status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert stack.children[-1].process.pid == app_pid and stack.children[-1].process.poll() is None

    text = requests.get(f"{base}{endpoints.METRICS}", timeout=5).text
    errors = sum(v for _, v in samples(text, names.DB_ERRORS.total))
    assert errors >= 2  # the refused write and the refused read were counted

    # Dozens of failed probes, and each worker logged the cause once, and its end once: at the next
    # probe it answers, so probe until every worker that logged the outage had one (which worker
    # accepts a connection is the kernel's choice).
    log_file = stack.settings.state_dir / "logs" / "app.log"
    log = log_file.read_text()
    causes = [json.loads(line)["message"] for line in log.splitlines() if "readiness: database unavailable:" in line]
    assert 1 <= len(causes) <= 2, causes
    assert all(len(cause) > len("readiness: database unavailable: ") for cause in causes), causes
    again = "readiness: the database answers again"
    deadline = time.monotonic() + 10
    while log.count(again) < len(causes) and time.monotonic() < deadline:
        assert requests.get(f"{base}{endpoints.READYZ}", timeout=5).status_code == 200
        time.sleep(0.05)
        log = log_file.read_text()
    assert log.count(again) == len(causes), log
    assert log.count("readiness: database unavailable:") == len(causes)


def test_writes_right_after_a_restart_nobody_saw_are_acknowledged(
    own_postgres: EmbeddedPostgres, served_app: Callable[..., Stack]
) -> None:
    """Under gunicorn's gevent worker: its pooled connection died in a restart that no request saw."""
    url = own_postgres.ensure_database("restart")
    upgrade(url)
    stack = served_app(workers=1, database_url=url)  # one worker: it holds the pooled connection
    base = stack.settings.app_url
    assert requests.post(f"{base}{API}/tasks", json={"title": "before"}, timeout=5).status_code == 201

    own_postgres.stop(mode="fast")
    own_postgres.start()
    _wait_for(f"{base}{endpoints.READYZ}", 200, 10.0)  # the probe opens a connection of its own

    writes = [requests.post(f"{base}{API}/tasks", json={"title": f"after {i}"}, timeout=5) for i in range(3)]
    assert [w.status_code for w in writes] == [201] * 3, [w.text for w in writes]


def test_gunicorn_sigterm_hook_turns_readiness_off_before_stopping(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy
    import signal

    # Loading the config file sets PROMETHEUS_MULTIPROC_DIR; monkeypatch puts the environment back.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent-for-this-test")
    hooks = runpy.run_path(str(ROOT / "app" / "gunicorn.conf.py"))
    stopped: list[int] = []

    class Worker:
        wsgi = app

        def handle_exit(self, signum: int, _frame: object) -> None:
            stopped.append(signum)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        hooks["post_worker_init"](Worker())
        signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped == [signal.SIGTERM]
    response = app.test_client().get(endpoints.READYZ)
    assert response.status_code == 503
    assert response.get_json()["reason"] == "shutting down"


def test_an_outage_logs_its_start_and_its_end_once_not_each_refused_request(
    own_postgres: EmbeddedPostgres, served_app: Callable[..., Stack]
) -> None:
    url = own_postgres.ensure_database("quiet")
    upgrade(url)
    stack = served_app(workers=1, database_url=url)  # one process: its lines are the whole log
    base = stack.settings.app_url
    assert requests.get(f"{base}{API}/stats", timeout=5).status_code == 200

    own_postgres.stop(mode="fast")
    refused = 0
    for i in range(30):
        response = (
            requests.post(f"{base}{API}/tasks", json={"title": f"during {i}"}, timeout=10)
            if i % 2
            else requests.get(f"{base}{API}/stats", timeout=10)
        )
        assert response.status_code == 503
        refused += 1
    own_postgres.start()
    _wait_for(f"{base}{endpoints.READYZ}", 200, 10.0)
    answered = [
        requests.post(f"{base}{API}/tasks", json={"title": f"after {i}"}, timeout=5).status_code
        if i % 2
        else requests.get(f"{base}{API}/stats", timeout=5).status_code
        for i in range(6)
    ]
    assert answered == [200, 201] * 3

    lines = [json.loads(line) for line in (stack.settings.state_dir / "logs" / "app.log").read_text().splitlines()]
    messages = [line["message"] for line in lines if line["logger"] == "app.db"]
    began = [m for m in messages if m.startswith("database became unavailable")]
    assert len(began) == 1, messages
    assert len(began[0]) > len("database became unavailable: "), "the cause is named"
    assert messages.count("database available again") == 1, messages
    assert messages.index("database available again") > messages.index(began[0])
    assert not [line for line in lines if line["logger"] == "app.errors"], "no line per refused request"
    # Every request still has its own access line.
    access = [line for line in lines if line["logger"] == "taskboard.access" and line["status"] == 503]
    assert len(access) == refused
