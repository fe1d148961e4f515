"""The PostgreSQL connection pool: checked-out connections, timed named operations, and a bounded ping."""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import psycopg2
import psycopg2.extensions
import psycopg2.pool
from gevent.monkey import get_original

from app.config import ConfigError, read_database_url_file

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings
    from app.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")
# The operating system's poll, whether gevent has patched the select module yet or not (below).
_NATIVE_POLL = get_original("select", "poll")
Cursor = psycopg2.extensions.cursor

# Errors that mean "the database could not answer", as opposed to a bug in our SQL: connection
# refused or lost, statement timeout (QueryCanceled is an OperationalError), pool exhausted.
_UNAVAILABLE = (psycopg2.OperationalError, psycopg2.InterfaceError, psycopg2.pool.PoolError)


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL did not answer in time; the caller answers 503 and nothing was acknowledged."""


class LoginRefused(DatabaseUnavailable):
    """PostgreSQL answered, and refused a new login: the credentials are stale (a rotation)."""


# libpq reports a refused login in the message only (a connection error has no SQLSTATE).
_LOGIN_REFUSED = ("password authentication failed", "authentication failed for user")


class Database:
    """A lazily created connection pool, one per process, opened on first use after the fork."""

    def __init__(self) -> None:
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._pool_url = ""
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._metrics: Metrics | None = None
        self._url = ""
        self._url_stamp: tuple[int, int, int] | None = None
        self._outage = _Outage()
        # The pool raises PoolError when every connection is out; the requests of a gevent worker
        # (app/worker.py) share it, so they queue here for a free one instead of failing at once.
        # Under gevent, release() yields to the hub (its condition probes the lock), a turn of the
        # event loop per query; a queue.SimpleQueue of tokens skipped it (+3 % req/s) but let new
        # requests overtake waiting ones: the p99 at saturation went from ~50 to ~130 ms (wrk -c32).
        self._free = threading.BoundedSemaphore(1)

    def init_app(self, app: Flask, settings: Settings, metrics: Metrics | None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._url = settings.database_url
        self._free = threading.BoundedSemaphore(settings.db_pool_max)
        # Set when the worker starts, not on its first query: a worker that has served no query yet
        # still may open that many (the sum over workers is the pod's share of the budget).
        if metrics is not None:
            metrics.pool_max.set(settings.db_pool_max)
        app.extensions["db"] = self

    def url(self) -> str:
        """The URL new connections use: DATABASE_URL, or DATABASE_URL_FILE as it reads now.

        The file is a mounted Secret that External Secrets refreshes when RDS rotates the master
        password; the kubelet swaps it atomically. A change is noticed by stat() on the next use.
        """
        path = self.settings.database_url_file
        if path is None:
            return self.settings.database_url
        try:
            st = os.stat(path)
        except OSError:
            return self._url  # briefly absent during the kubelet's swap: keep what we had
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._url_stamp:
            try:
                url = read_database_url_file(path)
            except ConfigError as exc:
                log.warning("keeping the previous database URL: %s", exc)
                return self._url
            if url != self._url:
                log.info("database credentials changed; new connections use them")
            self._url, self._url_stamp = url, stamp
        return self._url

    @property
    def settings(self) -> Settings:
        assert self._settings is not None, "Database.init_app was not called"
        return self._settings

    def connect_kwargs(self) -> dict[str, object]:
        """libpq parameters added to DATABASE_URL for every connection."""
        s = self.settings
        return {
            "connect_timeout": s.db_connect_timeout_s,
            "application_name": "taskboard",
            # Server-side cap on every statement, so no query can hold a worker forever.
            "options": f"-c statement_timeout={s.db_statement_timeout_ms}",
            # Notice a silently dead peer (a failed-over RDS instance) within ~20 s, not hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 2,
        }

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        url = self.url()
        if self._pool is None or url != self._pool_url:
            with self._lock:
                if self._pool is None or url != self._pool_url:
                    s = self.settings
                    # Created with minconn=0 so that building the pool never connects: a worker
                    # that starts while PostgreSQL is down stays up and reports it through /readyz.
                    pool = psycopg2.pool.ThreadedConnectionPool(0, s.db_pool_max, url, **self.connect_kwargs())
                    # psycopg2 keeps at most `minconn` idle connections and closes the rest on
                    # return; raise it now that construction is done.
                    pool.minconn = s.db_pool_min
                    # A previous pool (old credentials) is dropped, not closed: connections still
                    # checked out of it go back to it, and it closes them when it is collected.
                    self._pool, self._pool_url = pool, url
        return self._pool

    def run(
        self, operation: str, work: Callable[[Cursor], T], *, idempotent: bool = False, one_statement: bool = False
    ) -> T:
        """Run ``work`` in one transaction, committed before this returns; time it as ``operation``.

        ``one_statement``: ``work`` runs a single statement, which PostgreSQL commits on its own
        (autocommit): one round trip instead of three (BEGIN, the statement, COMMIT), and just as
        atomic. A pooled connection that PostgreSQL closed while it sat idle is replaced before
        anything is sent on it, so the first write after a restart succeeds. A read
        (``idempotent=True``) that fails because the connection died under it is tried once more on
        a fresh connection; a write that may have reached the server is never repeated, so it is
        acknowledged at most once. Raises :class:`DatabaseUnavailable` when PostgreSQL cannot answer.
        """
        try:
            try:
                result = self._run_once(operation, work, one_statement)
            except _StaleConnection as stale:
                if not idempotent:
                    raise DatabaseUnavailable(str(stale.__cause__)) from stale.__cause__
                try:
                    result = self._run_once(operation, work, one_statement)
                except _StaleConnection as again:
                    raise DatabaseUnavailable(str(again.__cause__)) from again.__cause__
        except DatabaseUnavailable as exc:
            self._outage.refused(exc)
            raise
        self._outage.answered()
        return result

    def _run_once(self, operation: str, work: Callable[[Cursor], T], one_statement: bool) -> T:
        wait = self.settings.db_connect_timeout_s
        if not self._free.acquire(timeout=wait):
            if self._metrics is not None:
                self._metrics.db_errors.labels(operation).inc()
            raise DatabaseUnavailable(f"no pooled connection came free within {wait} s (DB_POOL_MAX)")
        try:
            return self._run_on_pool(operation, work, one_statement)
        finally:
            self._free.release()

    def _run_on_pool(self, operation: str, work: Callable[[Cursor], T], one_statement: bool) -> T:
        pool = self._get_pool()
        metrics = self._metrics
        try:
            conn = pool.getconn()
            # Every idle connection may have been closed by a restart: at most that many are dropped
            # before the pool has none left and opens a new one.
            for _ in range(self.settings.db_pool_max):
                if not _closed_while_idle(conn):
                    break
                pool.putconn(conn, close=True)
                conn = pool.getconn()
        except _UNAVAILABLE as exc:
            if metrics is not None:
                metrics.db_errors.labels(operation).inc()
            raise DatabaseUnavailable(str(exc).strip()) from exc
        if metrics is not None:
            metrics.pool_in_use.inc()
        broken = False
        started = time.perf_counter()
        try:
            conn.autocommit = one_statement
            if one_statement:
                with conn.cursor() as cur:
                    return work(cur)
            with conn, conn.cursor() as cur:  # commits on success, rolls back on error
                return work(cur)
        except _UNAVAILABLE as exc:
            broken = bool(conn.closed)
            if metrics is not None:
                metrics.db_errors.labels(operation).inc()
            if broken:
                raise _StaleConnection() from exc
            raise DatabaseUnavailable(str(exc).strip()) from exc
        finally:
            if metrics is not None:
                metrics.db_query_duration.labels(operation).observe(time.perf_counter() - started)
                metrics.pool_in_use.dec()
            pool.putconn(conn, close=broken or bool(conn.closed))

    def ping(self) -> None:
        """Connect and run ``SELECT 1`` within READY_TIMEOUT_MS, on a connection of its own.

        The pool is bypassed on purpose: a probe must see what a new connection would see, and
        an asynchronous connection lets us bound connect and query on the client side, which
        libpq's ``connect_timeout`` (whole seconds, at least 2) cannot.
        """
        deadline = time.monotonic() + self.settings.ready_timeout_ms / 1000
        conn = None
        try:
            conn = psycopg2.connect(
                self.url(),
                async_=True,
                connect_timeout=self.settings.db_connect_timeout_s,
                application_name="taskboard-readyz",
            )
            _wait(conn, deadline)
            cur = conn.cursor()
            cur.execute("SELECT 1")
            _wait(conn, deadline)
            cur.fetchone()
        except _UNAVAILABLE as exc:
            message = str(exc).strip() or type(exc).__name__
            if any(marker in message for marker in _LOGIN_REFUSED):
                raise LoginRefused(message) from exc
            raise DatabaseUnavailable(message) from exc
        finally:
            if conn is not None:
                conn.close()

    def serves_on_open_connections(self) -> bool:
        """Whether a connection the pool already holds still answers ``SELECT 1``.

        Asked only after PostgreSQL refused a new login, so the server is known to be reachable and
        the query cannot hang on a dead network.
        """

        def work(cur: Cursor) -> bool:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)

        try:
            return self.run("readiness", work, one_statement=True)
        except DatabaseUnavailable:
            return False

    def close(self) -> None:
        """Close every pooled connection (tests and process exit)."""
        with self._lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None


class _Outage:
    """Logs an outage once as it begins and once as it ends, per process, not once per refused request.

    One WARNING per refusal made 9,455 lines for two 10-second outages, drowning the two that matter;
    each request still has its access line. State is a flag under a lock rather than anything
    thread-local, so that it holds whether requests run in threads or in gevent greenlets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False

    def refused(self, cause: DatabaseUnavailable) -> None:
        if self._become(down=True):
            log.warning("database became unavailable: %s", cause)

    def answered(self) -> None:
        # Read without the lock first: the steady state, every successful query, takes none.
        if self._down and self._become(down=False):
            log.info("database available again")

    def _become(self, *, down: bool) -> bool:
        """Set the state; whether this call changed it (so exactly one caller logs each change)."""
        with self._lock:
            changed, self._down = self._down != down, down
        return changed


def _closed_while_idle(conn: psycopg2.extensions.connection) -> bool:
    """Whether PostgreSQL has closed (or is closing) this idle pooled connection; nothing is sent on it.

    An idle connection has nothing to read unless the server spoke unprompted: a stopping, restarting
    or crashed server, or a terminated backend, sends FATAL and closes, which leaves bytes or the end
    of the stream waiting (readable, or hung up). Without LISTEN, anything else it could say unprompted
    (a notice) is rare, and dropping such a connection costs only a new one.

    One ``poll`` with a zero timeout, the operating system's own even in a gevent worker: it never
    waits, so it needs no hub, and gevent's would run a turn of the event loop for it (and the dup'ed
    socket this used before cost ~5.7 µs per query against ~0.5 µs).
    """
    if conn.closed:
        return True
    probe = _NATIVE_POLL()
    probe.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    return bool(probe.poll(0))


class _StaleConnection(Exception):
    """A pooled connection turned out to be closed; the cause is the driver's error."""


def _wait(conn: psycopg2.extensions.connection, deadline: float) -> None:
    """Drive an asynchronous connection until its current operation completes or time runs out."""
    while True:
        state = conn.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise psycopg2.OperationalError("no answer within the readiness timeout")
        if state == psycopg2.extensions.POLL_READ:
            events = select.POLLIN
        elif state == psycopg2.extensions.POLL_WRITE:
            events = select.POLLOUT
        else:  # pragma: no cover - psycopg2 documents only the three states above
            raise psycopg2.OperationalError(f"unexpected poll state {state}")
        # select.poll, not select.select: select cannot watch a descriptor numbered 1024 or more (a
        # busy process has them), and poll is gevent's cooperative one in a patched worker.
        waiter = select.poll()
        waiter.register(conn.fileno(), events)
        waiter.poll(remaining * 1000)
