"""Errors as responses: JSON ``{"error", "detail", "field"}`` everywhere but the HTML page."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from app.db import DatabaseUnavailable

log = logging.getLogger(__name__)

# Stable codes for the `error` member, by HTTP status.
_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    500: "internal_error",
    503: "unavailable",
}

# Werkzeug's own refusals, as the part of the request they are about and a sentence saying why.
_WERKZEUG_REFUSALS: tuple[tuple[type[HTTPException], str, str], ...] = (
    (ClientDisconnected, "body", "body: ended before its declared length, or its chunked framing is malformed"),
    (NotFound, "path", "path: matches no route"),
    (MethodNotAllowed, "method", "method: not allowed on this path; the Allow header lists those that are"),
)


class APIError(Exception):
    """A refusal with a status, a stable code and a sentence naming what was wrong."""

    def __init__(self, status: int, detail: str, *, field: str | None = None, error: str | None = None):
        super().__init__(detail)
        self.status = status
        self.error = error or _CODES.get(status, "error")
        self.detail = detail
        self.field = field


def _too_large() -> APIError:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return APIError(413, f"body: larger than {limit} bytes (MAX_BODY_BYTES)", field="body")


def refuse_partial_body() -> None:
    """After Werkzeug has read the body: refuse it if the client sent other than what was read.

    Under gunicorn the input stream is "terminated" (the server frames it), so Werkzeug reads it
    only up to MAX_CONTENT_LENGTH and treats an early end as the end: a body shorter than its
    Content-Length (the client gave up) and a chunked body cut at the limit would both be used as
    if whole. Nothing may be written from either.
    """
    stream = request.stream
    if not isinstance(stream, LimitedStream):
        return  # no body (Werkzeug's empty stand-in for an unframed one)
    declared = request.content_length
    if declared is not None:
        if stream.tell() < declared:
            raise ClientDisconnected()
        return
    if not stream.is_exhausted:
        return  # the body ended before the limit
    # Exactly MAX_CONTENT_LENGTH bytes of a body of undeclared length were read: one more byte
    # from the server's stream tells a body that fits from one that goes on.
    try:
        more = request.environ["wsgi.input"].read(1)
    except OSError:
        raise ClientDisconnected() from None
    if more:
        raise _too_large()


def _framing_error(exc: Exception) -> bool:
    # gunicorn's body parser raises its ParseException family (a malformed chunk size, a missing
    # chunk terminator) from wsgi.input reads. They are not OSErrors, so Werkzeug passes them on
    # as if the application had failed; they are the client's fault, a 400, not a 5xx.
    return type(exc).__module__ == "gunicorn.http.errors"


def _wants_html() -> bool:
    return request.blueprint == "web"


def error_response(status: int, detail: str, *, error: str | None = None, field: str | None = None) -> Response:
    if _wants_html():
        body = render_template("error.html", status=status, detail=detail)
        return Response(body, status=status, mimetype="text/html")
    payload: dict[str, str] = {"error": error or _CODES.get(status, "error"), "detail": detail}
    if field is not None:
        payload["field"] = field
    response = jsonify(payload)
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(exc: APIError) -> Response:
        return error_response(exc.status, exc.detail, error=exc.error, field=exc.field)

    @app.errorhandler(DatabaseUnavailable)
    def _db_unavailable(exc: DatabaseUnavailable) -> Response:
        # Not logged here: app/db.py logs an outage as it begins and ends; the access line counts each refusal.
        # A write whose connection died after its statement was sent may have been committed: say so
        # rather than promise nothing changed (app/db.py never repeats such a write by itself).
        detail = "the database did not answer"
        if request.method not in ("GET", "HEAD"):
            detail += "; the change may or may not have been applied"
        response = error_response(503, detail, error="database_unavailable")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if isinstance(exc, RequestEntityTooLarge):
            too_large = _too_large()
            return error_response(413, too_large.detail, field=too_large.field)
        status = exc.code or 500
        field, detail = "request", exc.description or exc.name
        for kind, kind_field, kind_detail in _WERKZEUG_REFUSALS:
            if isinstance(exc, kind):
                field, detail = kind_field, kind_detail
                break
        response = error_response(status, detail, field=field)
        # Keep headers Werkzeug chose, e.g. Allow on 405.
        for name, value in exc.get_response().headers.items():
            if name.lower() not in {"content-type", "content-length"}:
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if _framing_error(exc):
            return error_response(400, f"body: malformed chunked framing ({exc})", field="body")
        log.exception("unhandled error")
        return error_response(500, "internal error")
