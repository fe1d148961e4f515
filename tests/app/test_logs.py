"""Logs: every line on stdout is one JSON object with the agreed fields, and never a secret."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from app import endpoints
from local.stack import Stack
from tests.conftest import FAULT_TOKEN, TEST_SECRET, PostgresServer

API = endpoints.API_PREFIX
BASE_FIELDS = {"timestamp", "level", "logger", "message"}
ACCESS_FIELDS = BASE_FIELDS | {"request_id", "method", "route", "status", "duration_ms"}


def log_lines(stack: Stack, settle: float = 0.3) -> list[dict[str, Any]]:
    time.sleep(settle)  # let the workers' writes reach the file
    path = stack.settings.state_dir / "logs" / "app.log"
    text = path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        value = json.loads(line)  # every line, gunicorn's own included, is JSON
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


def test_every_line_is_json_with_the_fields(served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=2)
    url = stack.settings.app_url
    requests.post(f"{url}{API}/tasks", json={"title": "logged"}, timeout=5)
    requests.get(f"{url}{API}/tasks/424242", timeout=5)
    requests.get(f"{url}/", timeout=5)

    lines = log_lines(stack)
    assert lines
    for line in lines:
        assert set(line) >= BASE_FIELDS, line
        assert line["timestamp"].endswith("+00:00")
    access = [line for line in lines if line["logger"] == "taskboard.access"]
    assert {(a["method"], a["route"], a["status"]) for a in access} >= {
        ("POST", f"{API}/tasks", 201),
        ("GET", f"{API}/tasks/{{task_id}}", 404),
        ("GET", "/", 200),
    }
    for line in access:
        assert set(line) >= ACCESS_FIELDS, line
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert isinstance(line["status"], int)
    assert any(line["logger"] == "gunicorn.error" for line in lines)


def test_request_id_is_honoured_echoed_or_generated(served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=1)
    url = f"{stack.settings.app_url}{endpoints.HEALTHZ}"

    given = requests.get(url, headers={"X-Request-ID": "trace-me-123"}, timeout=5)
    assert given.headers["X-Request-ID"] == "trace-me-123"
    made = requests.get(url, timeout=5).headers["X-Request-ID"]
    assert len(made) == 32
    hostile = requests.get(url, headers={"X-Request-ID": 'x" , "level": "ERROR'}, timeout=5)
    assert hostile.headers["X-Request-ID"] != 'x" , "level": "ERROR'

    ids = [line.get("request_id") for line in log_lines(stack) if line["logger"] == "taskboard.access"]
    assert "trace-me-123" in ids and made in ids and hostile.headers["X-Request-ID"] in ids


def test_no_secret_cookie_or_authorization_reaches_the_log(
    served_app: Callable[..., Stack], pg_server: PostgresServer, migrated_database: Callable[[], str]
) -> None:
    url_with_password = migrated_database().replace("postgres@", "postgres:DbPassw0rdValue@")
    stack = served_app(
        workers=1,
        database_url=url_with_password,
        FAULT_INJECTION_ENABLED="true",
        FAULT_INJECTION_TOKEN=FAULT_TOKEN,
    )
    base = stack.settings.app_url
    headers = {"Authorization": "Bearer AuthHeaderValue42", "Cookie": "session=CookieValue42"}
    requests.get(f"{base}/?token=QueryTokenValue42", headers=headers, timeout=5)
    requests.post(f"{base}{API}/tasks", json={"title": "secret?"}, headers=headers, timeout=5)
    requests.get(f"{base}{endpoints.ADMIN_FAULTS}", headers={"Authorization": f"Bearer {FAULT_TOKEN}"}, timeout=5)
    requests.get(f"{base}{endpoints.ADMIN_FAULTS}", headers={"Authorization": "Bearer WrongToken42"}, timeout=5)

    text = (stack.settings.state_dir / "logs" / "app.log").read_text()
    assert "taskboard.access" in text
    for secret in (
        "DbPassw0rdValue",
        "AuthHeaderValue42",
        "CookieValue42",
        "QueryTokenValue42",
        "WrongToken42",
        FAULT_TOKEN,
        TEST_SECRET,
    ):
        assert secret not in text, secret
    assert "postgres:***@" in text  # the start-up line names the database, redacted
