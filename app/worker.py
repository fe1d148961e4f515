"""The gunicorn worker: gevent, with psycopg2 made cooperative and gunicorn's own refusals in the API's JSON.

Why gevent (docs/adr/0005): a client that sends its request slowly holds whatever reads it. A sync
worker is held whole (two slowloris clients took the service down); here a connection waits in a
greenlet, so hundreds of slow clients cost memory, not workers. The work itself is still CPU-bound
Python, one process per core.

psycopg2 is a C extension that monkey-patching cannot reach: without a wait callback a query would
block every greenlet of the worker. psycogreen's callback waits without a bound, and in this
non-blocking mode libpq ignores ``connect_timeout`` (a server that accepts the TCP connection and
never answers hangs the connect forever, measured), so the callback here bounds every wait: the
connect timeout while connecting, the statement timeout plus the connect timeout afterwards (the
server cancels a statement at its timeout; the margin covers the network).
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable
from typing import Any

import gevent
import psycopg2
import psycopg2.extensions
from gevent.socket import wait_read, wait_write
from gunicorn import glogging, util
from gunicorn.workers.ggevent import GeventWorker

from app.security import _HEADERS as SECURITY_HEADERS

WaitCallback = Callable[[psycopg2.extensions.connection], None]

# gunicorn's refusals (made before the app sees a request) as the API's error codes and the field at fault.
_REFUSALS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "request"),
    403: ("forbidden", "request"),
    414: ("uri_too_long", "path"),
    417: ("expectation_failed", "Expect"),
    431: ("headers_too_large", "headers"),
    500: ("internal_error", "request"),
    501: ("not_implemented", "Transfer-Encoding"),
}


def green_wait_callback(connect_timeout_s: float, statement_timeout_s: float) -> WaitCallback:
    """A psycopg2 wait callback that yields to the gevent hub and gives up after a bound."""
    query_bound = statement_timeout_s + connect_timeout_s

    def wait(conn: psycopg2.extensions.connection) -> None:
        bound = connect_timeout_s if conn.status == psycopg2.extensions.STATUS_SETUP else query_bound
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            try:
                if state == psycopg2.extensions.POLL_READ:
                    wait_read(conn.fileno(), timeout=bound)
                elif state == psycopg2.extensions.POLL_WRITE:
                    wait_write(conn.fileno(), timeout=bound)
                else:  # psycopg2 documents only the three states
                    raise psycopg2.OperationalError(f"unexpected poll state {state}")
            except TimeoutError:
                raise psycopg2.OperationalError(f"no answer from PostgreSQL within {bound:g} s") from None

    return wait


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, answering in the API's shape with the security headers."""
    error, field = _REFUSALS.get(status_int, ("bad_request", "request"))
    body = json.dumps({"error": error, "detail": mesg or reason, "field": field}).encode()
    headers = {
        "Connection": "close",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        **SECURITY_HEADERS,
    }
    head = f"HTTP/1.1 {status_int} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    util.write_nonblock(sock, head.encode("latin-1") + body)


class Logger(glogging.Logger):  # type: ignore[misc] # gunicorn ships no type information
    """gunicorn's logger without its access log, which the service's JSON access line replaces.

    gunicorn builds its access-log atoms (a dozen fields, a formatted date) for every request whenever
    a logging config is given, even with the access logger switched off: measured, about 2 % of a
    worker's samples under load (docs/performance.md).
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


class Worker(GeventWorker):  # type: ignore[misc] # gunicorn ships no type information
    """gunicorn's gevent worker, with the changes this module's docstring explains, and a prompt stop.

    On SIGTERM gunicorn's gevent worker waits until every connection's greenlet ends, and a greenlet
    still waiting for a request (a slow client, an idle connection) ends only when the client sends
    or closes: every stop with such a connection took the whole graceful timeout and ended in a
    forced kill. A connection waiting for its request has nothing in flight, so it is closed at once;
    requests being served still finish.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: dict[gevent.Greenlet, socket.socket] = {}  # greenlet -> its connection

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        current = gevent.getcurrent()
        self._waiting[current] = client
        if not self.alive:  # accepted just before SIGTERM
            _end_read(client)
        try:
            super().handle(listener, client, addr)
        finally:
            self._waiting.pop(current, None)

    def handle_request(self, listener_name: Any, req: Any, sock: socket.socket, addr: Any) -> Any:
        current = gevent.getcurrent()
        self._waiting.pop(current, None)  # a whole request has arrived: it is served to the end
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            self._waiting[current] = sock  # back to waiting for the next one (keep-alive)
            if not self.alive:
                _end_read(sock)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        for client in list(self._waiting.values()):
            _end_read(client)

    def init_process(self) -> None:
        # gunicorn calls util.write_error for every request it refuses itself; it has no hook for
        # the body, so the worker process replaces the function (the master is untouched).
        util.write_error = write_json_error
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        settings: Any = getattr(self.wsgi, "config", {}).get("SETTINGS")
        connect_s = float(settings.db_connect_timeout_s) if settings else 5.0
        statement_s = settings.db_statement_timeout_ms / 1000 if settings else 30.0
        psycopg2.extensions.set_wait_callback(green_wait_callback(connect_s, statement_s))


def _end_read(client: socket.socket) -> None:
    """Make a read waiting on ``client`` see end-of-file, so gunicorn closes it as if the client had.

    Killing the greenlet made gunicorn answer 500, and gevent's own shutdown() raises in the waiting
    greenlet; a duplicate descriptor's shutdown acts on the connection in the kernel and leaves
    gevent's waiter to wake normally.
    """
    with contextlib.suppress(OSError), socket.fromfd(client.fileno(), client.family, client.type) as dup:
        dup.shutdown(socket.SHUT_RD)
