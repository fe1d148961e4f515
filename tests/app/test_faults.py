"""Fault injection: absent unless enabled, guarded by its token, shared by workers, counted as real."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import requests
from flask import Flask

from app import endpoints
from app import metric_names as names
from local.stack import Stack
from tests.app.test_metrics import samples
from tests.conftest import FAULT_TOKEN

API = endpoints.API_PREFIX
AUTH = {"Authorization": f"Bearer {FAULT_TOKEN}"}


def faulty_app(make_app: Callable[..., Flask], tmp_path: Path) -> Flask:
    return make_app(
        FAULT_INJECTION_ENABLED="true",
        FAULT_INJECTION_TOKEN=FAULT_TOKEN,
        FAULT_STATE_PATH=str(tmp_path / "faults.json"),
    )


def test_admin_endpoint_does_not_exist_by_default(app: Flask) -> None:
    client = app.test_client()
    # 404 for every method: a 405 would mean a route is there.
    assert client.get(endpoints.ADMIN_FAULTS, headers=AUTH).status_code == 404
    assert client.put(endpoints.ADMIN_FAULTS, json={"*": {"error_ratio": 1}}, headers=AUTH).status_code == 404
    assert client.delete(endpoints.ADMIN_FAULTS, headers=AUTH).status_code == 404


def test_admin_endpoint_requires_the_token(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    client = faulty_app(make_app, tmp_path).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {FAULT_TOKEN}"}):
        response = client.put(endpoints.ADMIN_FAULTS, json={"*": {"error_ratio": 1}}, headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorised"
    assert not (tmp_path / "faults.json").exists()
    assert client.get(f"{API}/stats").status_code == 200


def test_bad_fault_definitions_are_refused(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    client = faulty_app(make_app, tmp_path).test_client()
    for body, field in (
        ({"*": {"error_ratio": 2}}, "*.error_ratio"),
        ({"*": {"latency_ms": -5}}, "*.latency_ms"),
        ({"*": {"latency_ms": True}}, "*.latency_ms"),  # a JSON boolean is not a number of milliseconds
        ({"*": {"latency_ms": "5"}}, "*.latency_ms"),
        ({"*": {"explode": True}}, "*.explode"),
        ({"*": 3}, "*"),
        ([], "body"),
    ):
        response = client.put(endpoints.ADMIN_FAULTS, json=body, headers=AUTH)
        assert response.status_code == 422, body
        refusal = response.get_json()
        assert refusal["field"] == field, (body, refusal)
        assert refusal["detail"].startswith(f"{field}: "), refusal
    assert not (tmp_path / "faults.json").exists()


def test_injected_errors_and_latency_are_served_and_counted(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    client = faulty_app(make_app, tmp_path).test_client()
    route = f"{API}/tasks/{{task_id}}"
    response = client.put(
        endpoints.ADMIN_FAULTS, json={route: {"error_ratio": 1.0}, f"{API}/stats": {"latency_ms": 300}}, headers=AUTH
    )
    assert response.status_code == 200
    assert client.get(endpoints.ADMIN_FAULTS, headers=AUTH).get_json()[route] == {"error_ratio": 1.0}

    for _ in range(3):
        failed = client.get(f"{API}/tasks/1")
        assert failed.status_code == 500
        assert failed.get_json()["error"] == "injected_fault"
    started = time.perf_counter()
    assert client.get(f"{API}/stats").status_code == 200
    assert time.perf_counter() - started >= 0.3
    assert client.get(endpoints.HEALTHZ).status_code == 200  # operational paths are never faulted

    text = client.get(endpoints.METRICS).get_data(as_text=True)
    errors = [v for labels, v in samples(text, names.HTTP_REQUESTS.total) if labels[names.STATUS] == "500" and v]
    assert errors == [3.0]
    injected = {
        (labels[names.FAULT], labels[names.ROUTE]): v for labels, v in samples(text, names.FAULTS_INJECTED.total)
    }
    assert injected == {("error", route): 3.0, ("latency", f"{API}/stats"): 1.0}

    assert client.delete(endpoints.ADMIN_FAULTS, headers=AUTH).status_code == 200
    assert client.get(f"{API}/tasks/1").status_code == 404  # back to the real answer


def test_every_worker_applies_the_same_faults(served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=3, FAULT_INJECTION_ENABLED="true", FAULT_INJECTION_TOKEN=FAULT_TOKEN)
    base = stack.settings.app_url
    put = requests.put(f"{base}{endpoints.ADMIN_FAULTS}", json={"*": {"error_ratio": 1}}, headers=AUTH, timeout=5)
    assert put.status_code == 200
    statuses = {requests.get(f"{base}{API}/stats", timeout=5).status_code for _ in range(30)}
    assert statuses == {500}
    requests.delete(f"{base}{endpoints.ADMIN_FAULTS}", headers=AUTH, timeout=5)
    statuses = {requests.get(f"{base}{API}/stats", timeout=5).status_code for _ in range(30)}
    assert statuses == {200}
