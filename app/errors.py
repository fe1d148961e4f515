"""Errors as responses: JSON ``{"error", "detail"[, "field"]}`` everywhere but the HTML page."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

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


class APIError(Exception):
    """A refusal with a status, a stable code and a sentence naming what was wrong."""

    def __init__(self, status: int, detail: str, *, field: str | None = None, error: str | None = None):
        super().__init__(detail)
        self.status = status
        self.error = error or _CODES.get(status, "error")
        self.detail = detail
        self.field = field


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
        log.warning("database unavailable: %s", exc)
        response = error_response(503, "the database did not answer; nothing was changed", error="database_unavailable")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = error_response(status, exc.description or exc.name)
        # Keep headers Werkzeug chose, e.g. Allow on 405.
        for name, value in exc.get_response().headers.items():
            if name.lower() not in {"content-type", "content-length"}:
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal error")
