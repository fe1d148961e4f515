"""The pool against a real PostgreSQL that restarts or cuts a statement off: what is retried, what never is."""

from __future__ import annotations

import os
import resource
import threading
import time
from typing import Any

import psycopg2
import pytest
from flask.testing import FlaskClient

from app import create_app, endpoints
from app.migrate import upgrade
from local.postgres import EmbeddedPostgres
from tests.conftest import app_config, execute

TASKS = f"{endpoints.API_PREFIX}/tasks"


def _titles(url: str) -> list[str]:
    return [title for (title,) in execute(url, "SELECT title FROM tasks ORDER BY id")]


def _service_backends(url: str, *, waiting_on_a_lock: bool = False) -> list[int]:
    """The pids of the service's connections to ``url``'s database (application_name taskboard)."""
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'taskboard' AND datname = current_database() "
        "AND (NOT %s OR wait_event_type = 'Lock')"
    )
    return [pid for (pid,) in execute(url, sql, (waiting_on_a_lock,))]


def test_the_first_write_after_postgresql_restarts_is_acknowledged(own_postgres: EmbeddedPostgres) -> None:
    """The pooled connection died with the server while idle: it is dropped before the INSERT is sent on it."""
    url = own_postgres.ensure_database("restart")
    upgrade(url)
    app = create_app(app_config(url))  # DB_POOL_MIN=1: the pool keeps its one connection between requests
    try:
        client = app.test_client()
        assert client.post(TASKS, json={"title": "before"}).status_code == 201
        assert len(_service_backends(url)) == 1, "the write's connection waits in the pool"

        own_postgres.stop(mode="fast")
        own_postgres.start()

        after = client.post(TASKS, json={"title": "after"})
        assert after.status_code == 201, after.get_json()
        assert _titles(url) == ["before", "after"]
    finally:
        app.extensions["db"].close()


def test_a_write_cut_off_in_flight_is_refused_and_never_repeated(client: FlaskClient, empty_database: str) -> None:
    """The INSERT reached the server, then its connection died: the client is told 503, and no copy is written later."""
    assert client.post(TASKS, json={"title": "warm"}).status_code == 201  # a pooled, live connection
    blocker = psycopg2.connect(empty_database, connect_timeout=5)
    answered: dict[str, Any] = {}

    def post() -> None:
        response = client.post(TASKS, json={"title": "in flight"})
        answered.update(status=response.status_code, body=response.get_json())

    writer = threading.Thread(target=post)
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")  # the INSERT waits on the server
        writer.start()
        deadline = time.monotonic() + 10
        while not (waiting := _service_backends(empty_database, waiting_on_a_lock=True)):
            assert time.monotonic() < deadline, "the INSERT never reached the server"
            time.sleep(0.02)
        execute(empty_database, "SELECT pg_terminate_backend(%s)", (waiting[0],))
        writer.join(5)  # a repeat would wait on the lock instead of answering
        assert not writer.is_alive(), "the write was repeated on another connection"
    finally:
        blocker.rollback()  # releases the lock: a repeated INSERT would now go through
        blocker.close()
        writer.join(10)
    assert answered == {
        "status": 503,
        "body": {
            "error": "database_unavailable",
            "detail": "the database did not answer; the change may or may not have been applied",
        },
    }
    assert _titles(empty_database) == ["warm"]


def test_readiness_and_queries_work_with_descriptors_numbered_past_1024(client: FlaskClient) -> None:
    """A busy worker holds more than 1024 descriptors; select() cannot watch those, and /readyz must not 500."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1200
    if hard != resource.RLIM_INFINITY and hard < wanted + 64:
        pytest.skip(f"the hard limit on open files here is {hard}: descriptors past 1024 cannot be opened to test them")
    if soft != resource.RLIM_INFINITY and soft < wanted + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted + 64, hard))
    held: list[int] = []
    try:
        while not held or held[-1] < wanted:
            held.append(os.open(os.devnull, os.O_RDONLY))
        ready = client.get(endpoints.READYZ)
        assert ready.status_code == 200, ready.get_json()
        created = client.post(TASKS, json={"title": "past 1024"})  # a pooled connection opened past 1024 too
        assert created.status_code == 201, created.get_json()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
