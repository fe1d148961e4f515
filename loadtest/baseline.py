"""The benchmark's floor: a bare WSGI function answering GET /api/v1/tasks/<id> with psycopg2 and json.

It does what the service's get-task endpoint does — one primary-key SELECT, the same JSON — with no
framework, no pool, no validation and no telemetry, so `make bench` can say what everything else
costs. Served by gunicorn with the service's own config file: ``loadtest.baseline:application``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg2

_PREFIX = "/api/v1/tasks/"
_SQL = "SELECT id, title, status, created_at, updated_at FROM tasks WHERE id = %s"
_connection: Any = None  # one per worker process, opened on its first request (after the fork)
# A gevent worker serves many requests at once and a psycopg2 connection runs one query at a time,
# so requests take turns on it, as the service's one pooled connection per worker (app/db.py).
# The module is imported after gevent patched the worker: this lock is a greenlet's lock.
_lock = threading.Lock()

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    global _connection
    path: str = environ.get("PATH_INFO", "")
    if not path.startswith(_PREFIX) or not path[len(_PREFIX) :].isdigit():
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error":"not_found"}']
    with _lock:
        if _connection is None:
            _connection = psycopg2.connect(os.environ["DATABASE_URL"])
            _connection.autocommit = True
        with _connection.cursor() as cur:
            cur.execute(_SQL, (int(path[len(_PREFIX) :]),))
            row = cur.fetchone()
    if row is None:
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error":"not_found"}']
    body = json.dumps(
        {
            "id": row[0],
            "title": row[1],
            "status": row[2],
            "created_at": row[3].isoformat(),
            "updated_at": row[4].isoformat(),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
