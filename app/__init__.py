"""The task-board service: a Flask application on PostgreSQL with traces, metrics and JSON logs."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from app import api, errors, logs, security, tracing, web
from app.config import Settings, redact_url
from app.db import Database
from app.faults import FaultInjector
from app.health import Health
from app.metrics import Metrics
from app.tasks import OPERATIONS, TaskStore

log = logging.getLogger(__name__)


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """Build the application from environment-style settings (``os.environ`` when ``config`` is None).

    Nothing connects here: the pool opens its first connection on the first request.
    """
    settings = Settings.from_env(os.environ if config is None else config)
    logs.configure(settings.log_level)

    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        TESTING=settings.env == "test",
    )

    # Hook order matters: tracing puts its span first, then the request id, then the metrics
    # timer, so that fault injection and CSRF refusals below are timed, counted and logged.
    tracing.init_app(app)
    logs.init_app(app)
    # Off means off: nothing is counted, so no multiprocess file is written (not counted and hidden).
    metrics: Metrics | None = None
    if settings.metrics_enabled:
        metrics = Metrics()
        metrics.init_app(app, version=settings.build_version, commit=settings.build_commit)
    faults = None
    if settings.fault_injection_enabled:
        faults = FaultInjector(settings.fault_state_path, settings.fault_injection_token, metrics)
        faults.init_app(app)

    csrf = CSRFProtect(app)
    # The JSON API takes no cookies, only application/json bodies (which a cross-site form cannot
    # send without a CORS preflight we never grant), so CSRF tokens protect nothing there; the
    # admin endpoint is guarded by its bearer token.
    csrf.exempt(api.bp)
    if faults is not None:
        csrf.exempt(faults.blueprint)

    db = Database()
    db.init_app(app, settings, metrics)
    app.extensions["tasks"] = TaskStore(db, metrics)
    Health(db).init_app(app)

    security.init_app(app, proxy_hops=settings.proxy_hops)
    errors.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    if metrics is not None:
        metrics.declare_series(app, OPERATIONS)

    log.info(
        "taskboard ready to serve",
        extra={
            "env": settings.env,
            "version": settings.build_version,
            "database": redact_url(settings.database_url),
            "fault_injection": settings.fault_injection_enabled,
        },
    )
    return app
