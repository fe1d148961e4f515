"""Response headers every answer carries, and trust in proxy headers only when configured."""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.middleware.proxy_fix import ProxyFix

# The page uses one same-origin stylesheet and no scripts; forms post only to us; no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # same-origin rather than no-referrer: Flask-WTF checks the Referer of form posts over HTTPS.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once instead of per request.

    Flask builds it on every request, even one without a cookie (most API calls); that showed as
    ~10 % of a request's CPU in profiles. The key cannot change while the process runs.
    """

    _serializer: URLSafeTimedSerializer | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if self._serializer is None:
            self._serializer = super().get_signing_serializer(app)
        return self._serializer


def init_app(app: Flask, *, proxy_hops: int) -> None:
    """Add the headers; with ``proxy_hops`` > 0 believe that many X-Forwarded-* hops (an ALB is one)."""
    app.session_interface = SessionCookies()
    if proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxy_hops, x_proto=proxy_hops, x_host=0, x_port=proxy_hops
        )

    @app.after_request
    def _headers(response: Response) -> Response:
        # One pass over the existing headers, then appends: Headers.setdefault scans the list twice
        # per call, which showed in profiles of the hot path.
        present = {name.lower() for name in response.headers.keys()}  # noqa: SIM118 - Headers is a list
        for name, value in _HEADERS.items():
            if name.lower() not in present:
                response.headers.add(name, value)
        if request.is_secure and "strict-transport-security" not in present:
            response.headers.add("Strict-Transport-Security", HSTS)
        if "cache-control" not in present:
            response.headers.add("Cache-Control", "no-store")
        return response
