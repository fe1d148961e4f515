"""The gunicorn worker (app/worker.py) under the real server: its own refusals, its stop, its trust, its waits."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable

import psycopg2
import psycopg2.extensions
import requests

from app import endpoints
from app.security import _HEADERS as SECURITY_HEADERS
from app.worker import green_wait_callback
from local.stack import Stack


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is; return the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


# What gunicorn refuses before the app sees a request, and the API's code and field for each.
REFUSALS = {
    "uri-too-long": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long", "path"),
    "too-many-headers": (
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(150)) + b"\r\n",
        431, "headers_too_large", "headers",
    ),
    "bad-request-line": (b"NOT A REQUEST LINE\r\n\r\n", 400, "bad_request", "request"),
    "header-without-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "bad_request", "request"),
}  # fmt: skip


def test_refusals_gunicorn_makes_itself_are_json_with_the_security_headers(served_app: Callable[..., Stack]) -> None:
    stack = served_app()
    for name, (request_bytes, status, error, field) in REFUSALS.items():
        got, headers, body = _raw(stack.settings.app_port, request_bytes)
        assert got == status, (name, body[:300])
        assert headers["content-type"] == "application/json", name
        payload = json.loads(body)
        assert (payload["error"], payload["field"]) == (error, field), name
        assert payload["detail"], name
        for header, value in SECURITY_HEADERS.items():
            assert headers[header.lower()] == value, (name, header)
        assert headers["cache-control"] == "no-store", name


def test_a_connection_still_sending_its_request_does_not_hold_the_stop(served_app: Callable[..., Stack]) -> None:
    """A slow client during a rollout: gevent's worker used to wait for it until the graceful timeout."""
    stack = served_app(workers=1, GUNICORN_GRACEFUL_TIMEOUT="20")
    answered = requests.get(f"{stack.settings.app_url}{endpoints.HEALTHZ}", timeout=5)
    assert answered.headers["Connection"] == "close"  # no keep-alive (app/gunicorn.conf.py)
    slow = socket.create_connection(("127.0.0.1", stack.settings.app_port), timeout=5)
    try:
        slow.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and nothing more
        time.sleep(0.5)
        master = stack.children[-1].process
        sent = time.monotonic()
        master.send_signal(signal.SIGTERM)
        master.wait(30)
        took = time.monotonic() - sent
        assert master.returncode == 0
        assert took < 5, f"the stop took {took:.1f} s with one slow client connected"
        assert slow.recv(65536) == b"", "the slow client's connection was not closed cleanly"
    finally:
        slow.close()


def test_forwarded_proto_is_not_believed_without_proxy_hops(served_app: Callable[..., Stack]) -> None:
    stack = served_app(PROXY_HOPS="0")
    forged = requests.get(
        f"{stack.settings.app_url}{endpoints.HEALTHZ}", headers={"X-Forwarded-Proto": "https"}, timeout=5
    )
    assert forged.status_code == 200
    assert "Strict-Transport-Security" not in forged.headers  # only a request believed to be HTTPS gets it
    behind_alb = served_app(PROXY_HOPS="1")
    believed = requests.get(
        f"{behind_alb.settings.app_url}{endpoints.HEALTHZ}", headers={"X-Forwarded-Proto": "https"}, timeout=5
    )
    assert "Strict-Transport-Security" in believed.headers


def test_the_green_wait_gives_up_on_a_server_that_never_answers() -> None:
    """In psycopg2's green mode libpq ignores connect_timeout: without the bound a connect hangs for ever."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel completes the handshake; nobody ever speaks
    port = silent.getsockname()[1]
    outcome: list[object] = []

    def connect() -> None:
        psycopg2.extensions.set_wait_callback(green_wait_callback(1, 1))
        started = time.monotonic()
        try:
            psycopg2.connect(f"postgresql://u@127.0.0.1:{port}/x?sslmode=disable")
        except psycopg2.OperationalError as exc:
            outcome.extend([str(exc), time.monotonic() - started])
        finally:
            psycopg2.extensions.set_wait_callback(None)

    worker = threading.Thread(target=connect)
    worker.start()
    worker.join(10)
    silent.close()
    assert not worker.is_alive(), "the connect did not give up"
    assert "no answer from PostgreSQL within 1 s" in str(outcome[0])
    assert isinstance(outcome[1], float) and outcome[1] < 3
