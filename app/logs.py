"""JSON logs on stdout: one object per line, with the request id and the active trace and span ids."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, has_request_context, request
from opentelemetry import trace
from pythonjsonlogger.orjson import OrjsonFormatter

from app import endpoints
from app import metric_names as names
from app.metrics import current_route

ACCESS_LOGGER = "taskboard.access"
access_log = logging.getLogger(ACCESS_LOGGER)

# An incoming X-Request-ID is kept only if it is short and plain; anything else is replaced, so
# that a client cannot inject structure or bulk into our logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Defence in depth: the service never logs headers, cookies or URLs with credentials, but a
# library message might; these patterns are masked in every line.
_SECRETS = (
    (re.compile(r"(?i)\b(\w+://[^:/@\s]*:)[^@\s]+@"), r"\1***@"),
    (re.compile(r"(?i)\b(authorization|cookie|password|passwd|secret|token)(\s*[=:]\s*)(\S+)"), r"\1\2***"),
)


class ContextFilter(logging.Filter):
    """Adds request_id, trace_id and span_id to records made during a request or span, masks secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            setattr(record, names.TRACE_ID, format(context.trace_id, "032x"))
            setattr(record, names.SPAN_ID, format(context.span_id, "016x"))
        if has_request_context() and "request_id" in g and not hasattr(record, "request_id"):
            record.request_id = g.request_id
        # The access line is built from the method, route template and status alone, so it is the
        # one record that skips the (comparatively costly) masking on every request.
        if isinstance(record.msg, str) and record.name != ACCESS_LOGGER:
            message = record.getMessage()
            for pattern, replacement in _SECRETS:
                message = pattern.sub(replacement, message)
            record.msg, record.args = message, None
        return True


def json_formatter() -> logging.Formatter:
    """The formatter every handler uses (gunicorn's too, through its logconfig_dict).

    python-json-logger's orjson backend: the same fields, encoded in C (loadtest/cost.py measures it).
    """
    return OrjsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="timestamp",
    )


def configure(level: str) -> None:
    """Send every logger to one JSON handler on stdout (idempotent; replaces gunicorn's root handler)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # No record attribute the JSON line leaves out is worth computing for every line: the thread
    # (under gevent each greenlet becomes a dummy Thread object on its first log line), the process
    # id and the multiprocessing process name.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Nor where in the source a line was logged: finding the caller walks the stack for every record.
    logging._srcfile = None  # the logging HOWTO's documented switch ("Optimization")
    # The access log below replaces Werkzeug's own request lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    """Assign each request an id (honouring X-Request-ID), echo it, and write one access line."""

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(endpoints.REQUEST_ID_HEADER, "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.log_started = time.perf_counter()

    @app.after_request
    def _access(response: Response) -> Response:
        response.headers[endpoints.REQUEST_ID_HEADER] = g.get("request_id", "")
        started = g.pop("log_started", None)
        if started is None or not access_log.isEnabledFor(logging.INFO):
            return response
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        route = current_route()
        # The query string is left out on purpose: it is user input and may carry tokens.
        access_log.info(
            "%s %s %s",
            request.method,
            route,
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response
