"""Fault injection for drills: per-route added latency and error ratio, switched at runtime.

Present only when FAULT_INJECTION_ENABLED is true (refused in production). The state lives in a
small JSON file so that every gunicorn worker of the pod applies the same faults; each worker
re-reads it when its modification time changes. Injected errors are ordinary 500 responses, so
they are counted, logged and traced like real ones.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from flask import Blueprint, Flask, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from app import endpoints
from app.errors import APIError, error_response, refuse_partial_body
from app.metrics import Metrics, current_route

log = logging.getLogger(__name__)

ANY_ROUTE = "*"


class Fault(BaseModel):
    """One route's fault: added latency, a share of its requests answered 500, or both."""

    # strict, like the API's bodies (app/contract.py): JSON types as sent; an unknown member is refused.
    model_config = ConfigDict(extra="forbid", strict=True)

    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    error_ratio: Annotated[float, Field(ge=0, le=1)] = 0


# The admin body: route template (or * for every route) → the fault to apply.
_FAULTS = TypeAdapter(dict[str, Fault])
_EXEMPT = (*endpoints.OPERATIONAL_PATHS, endpoints.ADMIN_FAULTS)


class FaultInjector:
    """Applies the faults in ``path`` to matching requests and serves the admin endpoint."""

    def __init__(self, path: str, token: str, metrics: Metrics | None) -> None:
        self._path = Path(path)
        self._token = token.encode()
        self._metrics = metrics
        self._stamp: tuple[int, int] | None = None
        self._faults: dict[str, dict[str, Any]] = {}
        self._random = random.Random()  # noqa: S311 - drills need no cryptographic randomness

    def init_app(self, app: Flask) -> None:
        app.extensions["faults"] = self
        app.before_request(self._apply)
        self.blueprint = admin = Blueprint("admin", __name__)
        admin.add_url_rule(endpoints.ADMIN_FAULTS, "get_faults", self._get, methods=["GET"])
        admin.add_url_rule(endpoints.ADMIN_FAULTS, "put_faults", self._put, methods=["PUT"])
        admin.add_url_rule(endpoints.ADMIN_FAULTS, "clear_faults", self._clear, methods=["DELETE"])
        admin.before_request(self._authorise)
        app.register_blueprint(admin)
        log.warning("fault injection is enabled at %s", endpoints.ADMIN_FAULTS)

    # -- state -------------------------------------------------------------------------------

    def current(self) -> dict[str, dict[str, Any]]:
        """The faults in force, re-read from the state file when it changed."""
        try:
            st = self._path.stat()
        except FileNotFoundError:
            self._stamp, self._faults = None, {}
            return self._faults
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self._faults = json.loads(self._path.read_text())
            except (OSError, ValueError):
                log.exception("unreadable fault state file %s; applying no faults", self._path)
                self._faults = {}
            self._stamp = stamp
        return self._faults

    def replace(self, faults: dict[str, dict[str, Any]]) -> None:
        # Written to a temporary file and renamed, so a worker never reads half a file.
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".faults-")
        with os.fdopen(fd, "w") as out:
            json.dump(faults, out)
        os.replace(tmp, self._path)

    # -- request path ------------------------------------------------------------------------

    def _apply(self) -> None:
        if request.path in _EXEMPT:
            return
        faults = self.current()
        if not faults:
            return
        route = current_route()
        fault = faults.get(route) or faults.get(ANY_ROUTE)
        if not fault:
            return
        latency_ms = int(fault.get("latency_ms", 0))
        if latency_ms:
            if self._metrics is not None:
                self._metrics.faults_injected.labels(route, "latency").inc()
            time.sleep(latency_ms / 1000)
        if self._random.random() < float(fault.get("error_ratio", 0)):
            if self._metrics is not None:
                self._metrics.faults_injected.labels(route, "error").inc()
            raise APIError(500, "injected fault (drill)", error="injected_fault")

    # -- admin endpoint ----------------------------------------------------------------------

    def _authorise(self) -> Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token):
            return None
        response = error_response(401, "a valid bearer token is required", error="unauthorised", field="Authorization")
        # RFC 6750 §3: say which scheme is wanted, and name a presented token's fault.
        challenge = f'Bearer realm="{endpoints.SERVICE_NAME}"'
        if scheme.lower() == "bearer":
            challenge += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = challenge
        return response

    def _get(self) -> Response:
        return jsonify(self.current())

    def _put(self) -> Response:
        if not request.is_json:
            raise APIError(415, "Content-Type: must be application/json", field="Content-Type")
        body = request.get_json(silent=True)
        refuse_partial_body()
        if body is None:
            raise APIError(400, "body: not valid JSON", error="invalid_json", field="body")
        try:
            _FAULTS.validate_python(body)
        except ValidationError as exc:
            raise _refusal(exc) from None
        self.replace(body)
        log.warning("faults replaced: %s", json.dumps(body, sort_keys=True))
        return jsonify(self.current())

    def _clear(self) -> Response:
        self._path.unlink(missing_ok=True)
        log.warning("faults cleared")
        return jsonify({})


def _refusal(exc: ValidationError) -> APIError:
    """The first thing wrong with a fault definition, named by its path (``*.error_ratio``)."""
    error = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "body"
    reason = "must be an object" if error["type"] in {"dict_type", "model_type"} else error["msg"]
    return APIError(422, f"{field}: {reason}", field=field)
