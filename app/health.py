"""Liveness and readiness: /healthz never does I/O; /readyz asks PostgreSQL and knows about shutdown."""

from __future__ import annotations

import logging
import threading

from flask import Flask, Response, jsonify

from app import endpoints
from app.db import Database, DatabaseUnavailable, LoginRefused

log = logging.getLogger(__name__)


class Health:
    """Serves the probes; :meth:`shutting_down` flips readiness to 503 for the rest of the process."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._stopping = threading.Event()

    def init_app(self, app: Flask) -> None:
        app.extensions["health"] = self
        app.add_url_rule(endpoints.HEALTHZ, "healthz", self._healthz, methods=["GET"])
        app.add_url_rule(endpoints.READYZ, "readyz", self._readyz, methods=["GET"])

    def shutting_down(self) -> None:
        """Called from the SIGTERM handler (app/gunicorn.conf.py): stop taking new traffic."""
        self._stopping.set()

    @property
    def is_shutting_down(self) -> bool:
        return self._stopping.is_set()

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
                log.warning("new database logins are refused (%s); serving on open connections", exc)
                return jsonify(status="ready", warning="new database logins refused; serving on open connections")
            return _unready(f"database: {exc}")
        except DatabaseUnavailable as exc:
            return _unready(f"database: {exc}")
        return jsonify(status="ready")


def _unready(reason: str) -> Response:
    response = jsonify(status="unavailable", reason=reason)
    response.status_code = 503
    return response
