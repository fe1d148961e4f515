"""Security headers, HSTS only over TLS, proxy headers only when trusted, cookie flags."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from app import endpoints
from app.security import CONTENT_SECURITY_POLICY


def test_headers_on_page_and_api(client: Flask) -> None:
    for path in ("/", f"{endpoints.API_PREFIX}/stats", "/missing"):
        response = client.get(path)  # type: ignore[attr-defined]
        headers = response.headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers  # plain HTTP


def test_page_needs_no_inline_script_or_style(client: Flask) -> None:
    page = client.get("/").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "<script" not in page
    assert "style=" not in page


def test_hsts_over_tls(client: Flask) -> None:
    response = client.get("/", base_url="https://board.example")  # type: ignore[attr-defined]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_forwarded_proto_is_ignored_unless_proxy_hops_are_configured(make_app: Callable[..., Flask]) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    untrusting = make_app().test_client()
    assert "Strict-Transport-Security" not in untrusting.get("/", headers=forwarded).headers
    behind_alb = make_app(PROXY_HOPS="1").test_client()
    assert "Strict-Transport-Security" in behind_alb.get("/", headers=forwarded).headers


def test_session_cookie_is_locked_down_in_production(make_app: Callable[..., Flask]) -> None:
    app = make_app(APP_ENV="production")
    cookie = app.test_client().get("/", base_url="https://board.example").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
