"""Liveness and readiness: /healthz never does I/O; /readyz asks PostgreSQL and knows about shutdown."""

from __future__ import annotations

import logging
import threading

from flask import Flask, Response, jsonify

from app import endpoints
from app.db import Database, DatabaseUnavailable, LoginRefused

log = logging.getLogger(__name__)

# What /readyz tells whoever asks. PostgreSQL's own message (host, port, role, server version) is
# for the operator, so it goes to the log, not into the answer.
UNAVAILABLE = "database unavailable"
LOGIN_REFUSED = "database login refused"
SERVING_ON_OPEN = "new database logins refused; serving on open connections"


class Health:
    """Serves the probes; :meth:`shutting_down` flips readiness to 503 for the rest of the process."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._reported: str | None = None

    def init_app(self, app: Flask) -> None:
        app.extensions["health"] = self
        app.add_url_rule(endpoints.HEALTHZ, "healthz", self._healthz, methods=["GET"])
        app.add_url_rule(endpoints.READYZ, "readyz", self._readyz, methods=["GET"])

    def shutting_down(self) -> None:
        """Called from the SIGTERM handler (app/gunicorn.conf.py): stop taking new traffic."""
        self._stopping.set()

    def _healthz(self) -> Response:
        return jsonify(status="ok")

    def _readyz(self) -> Response:
        if self._stopping.is_set():
            return _unready("shutting down")
        try:
            self._db.ping()
        except LoginRefused as exc:
            # After an RDS password rotation, new logins fail until the mounted secret is refreshed
            # (a minute or two); the pool's open sessions keep working. Every pod would turn unready
            # at once and the load balancer would drop them all, so a pod that still serves on its
            # open connections stays in rotation.
            if self._db.serves_on_open_connections():
                self._report(f"{SERVING_ON_OPEN} ({exc})")
                return jsonify(status="ready", warning=SERVING_ON_OPEN)
            self._report(f"{LOGIN_REFUSED}: {exc}")
            return _unready(LOGIN_REFUSED)
        except DatabaseUnavailable as exc:
            self._report(f"{UNAVAILABLE}: {exc}")
            return _unready(UNAVAILABLE)
        self._report(None)
        return jsonify(status="ready")

    def _report(self, problem: str | None) -> None:
        """Log what readiness found when it changes, not on every probe (the kubelet asks every few seconds)."""
        with self._lock:
            if problem == self._reported:
                return
            previous, self._reported = self._reported, problem
        if problem is not None:
            log.warning("readiness: %s", problem)
        elif previous is not None:
            log.info("readiness: the database answers again")


def _unready(reason: str) -> Response:
    response = jsonify(status="unavailable", reason=reason)
    response.status_code = 503
    return response
