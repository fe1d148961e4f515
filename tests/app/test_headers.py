"""Response headers as the real server (gunicorn) sends them: one charset on /metrics, the 401 challenge."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from app import endpoints
from local.stack import Stack
from tests.conftest import FAULT_TOKEN


def _get(stack: Stack, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(urlsplit(stack.settings.app_url).netloc, timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_metrics_names_its_content_type_once(served_app: Callable[..., Stack]) -> None:
    # Under gunicorn the multiprocess registry answers, in the text format only, whatever Accept says.
    stack = served_app(workers=1)
    response = _get(stack, endpoints.METRICS, {"Accept": "application/openmetrics-text"})
    assert response.status == 200
    assert response.headers.get_all("Content-Type") == [CONTENT_TYPE_LATEST]
    assert response.headers["Content-Type"].count("charset") == 1


def test_fault_endpoint_refusal_carries_a_bearer_challenge(served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=1, FAULT_INJECTION_ENABLED="true", FAULT_INJECTION_TOKEN=FAULT_TOKEN)
    challenges = {
        "no credentials": ({}, 'Bearer realm="taskboard"'),
        "another scheme": ({"Authorization": f"Basic {FAULT_TOKEN}"}, 'Bearer realm="taskboard"'),
        "a wrong token": ({"Authorization": "Bearer wrong"}, 'Bearer realm="taskboard", error="invalid_token"'),
    }
    for case, (headers, challenge) in challenges.items():
        response = _get(stack, endpoints.ADMIN_FAULTS, headers)
        assert response.status == 401, case
        assert response.headers.get_all("WWW-Authenticate") == [challenge], case
    granted = _get(stack, endpoints.ADMIN_FAULTS, {"Authorization": f"Bearer {FAULT_TOKEN}"})
    assert granted.status == 200
    assert granted.headers["WWW-Authenticate"] is None
