"""/metrics: every family from app.metric_names, bounded labels, promtool-clean, correct across workers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app import endpoints
from app import metric_names as names
from app.tasks import OPERATIONS
from local.stack import Stack
from tests.conftest import ROOT, app_config

API = endpoints.API_PREFIX


def scrape(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    """Samples by family name."""
    families: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
    return families


def samples(text: str, sample_name: str) -> list[tuple[dict[str, str], float]]:
    return [(labels, value) for fam in scrape(text).values() for name, labels, value in fam if name == sample_name]


def drive_traffic(client: FlaskClient) -> list[int]:
    ids = [client.post(f"{API}/tasks", json={"title": f"t{i}"}).get_json()["id"] for i in range(12)]
    for task_id in ids:
        client.get(f"{API}/tasks/{task_id}")
    client.patch(f"{API}/tasks/{ids[0]}", json={"status": "done"})
    client.patch(f"{API}/tasks/{ids[0]}", json={"status": "done"})  # already done: not a completion
    client.patch(f"{API}/tasks/{ids[1]}", json={"status": "doing"})
    client.get(f"{API}/tasks?limit=5")
    client.get(f"{API}/tasks/99999")
    client.post(f"{API}/tasks", data="nope", content_type="text/plain")
    for i in range(20):
        client.get(f"/no/such/page/{i}")
    client.open(f"{API}/tasks", method="BREW")
    client.get("/")
    return ids


def test_every_declared_family_is_exposed(client: FlaskClient) -> None:
    drive_traffic(client)
    text = client.get(endpoints.METRICS).get_data(as_text=True)
    exposed = {name for fam in scrape(text).values() for name, _, _ in fam}
    for metric in names.ALL:
        if metric is names.FAULTS_INJECTED:
            continue  # appears on the first injected fault (test_faults), only where faults exist
        assert set(metric.series) <= exposed, f"{metric.name} not exposed"


def test_routes_are_templates_and_labels_stay_bounded(client: FlaskClient) -> None:
    drive_traffic(client)
    text = client.get(endpoints.METRICS).get_data(as_text=True)
    requests_total = samples(text, names.HTTP_REQUESTS.total)
    routes = {labels[names.ROUTE] for labels, _ in requests_total}
    assert f"{API}/tasks/{{task_id}}" in routes
    assert names.UNMATCHED_ROUTE in routes
    assert not any(any(ch.isdigit() for ch in route.replace("v1", "")) for route in routes), routes
    methods = {labels[names.METHOD] for labels, _ in requests_total}
    assert names.OTHER_METHOD in methods and "BREW" not in methods
    # 12 ids and 20 random paths collapse to a handful of series (besides the zeroed 5xx ones).
    counted = [(labels, v) for labels, v in requests_total if v > 0]
    assert len(counted) <= 15, counted

    gets = [v for labels, v in requests_total if labels[names.ROUTE] == f"{API}/tasks/{{task_id}}"]
    assert sum(gets) == 12 + 1 + 3  # 12 found, 1 missing, 3 patches
    classes = {labels[names.STATUS_CLASS] for labels, _ in samples(text, names.HTTP_REQUEST_DURATION.count)}
    assert classes == {"2xx", "4xx"}


def test_histogram_buckets_and_business_counters(client: FlaskClient) -> None:
    drive_traffic(client)
    text = client.get(endpoints.METRICS).get_data(as_text=True)
    bounds = {
        float(labels["le"]) for labels, _ in samples(text, names.HTTP_REQUEST_DURATION.bucket) if labels["le"] != "+Inf"
    }
    assert bounds == set(names.REQUEST_DURATION_BUCKETS)
    assert samples(text, names.TASKS_CREATED.total) == [({}, 12.0)]
    assert samples(text, names.TASKS_COMPLETED.total) == [({}, 1.0)]
    operations = {labels[names.OPERATION] for labels, _ in samples(text, names.DB_QUERY_DURATION.count)}
    assert {"create_task", "get_task", "update_task", "list_tasks", "task_stats"} <= operations
    assert samples(text, names.BUILD_INFO.name) == [({"version": "dev", "commit": "unknown"}, 1.0)]
    assert samples(text, names.DB_POOL_CONNECTIONS_IN_USE.name) == [({}, 0.0)]


@pytest.mark.slow  # promtool: Debian package prometheus
def test_promtool_finds_nothing_to_complain_about(client: FlaskClient) -> None:
    drive_traffic(client)
    text = client.get(endpoints.METRICS).get_data(as_text=True)
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: make test installs the Debian package prometheus"
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), result


def test_counts_are_summed_across_gunicorn_workers(served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=3)
    url = stack.settings.app_url
    session = requests.Session()
    statuses = [session.get(f"{url}{API}/stats", timeout=5).status_code for _ in range(60)]
    assert statuses == [200] * 60

    # Every worker answers /metrics with the same totals, whichever served the traffic.
    texts = [requests.get(f"{url}{endpoints.METRICS}", timeout=5).text for _ in range(6)]
    for text in texts:
        counts = [
            v
            for labels, v in samples(text, names.HTTP_REQUESTS.total)
            if labels[names.ROUTE] == f"{API}/stats" and labels[names.STATUS] == "200"
        ]
        assert counts == [60.0]
    # Every worker sets its share when it starts, whether or not it has served a query; a worker
    # may still be booting when the first one answers, so give them a few seconds.
    deadline = time.monotonic() + 10
    while True:
        text = requests.get(f"{url}{endpoints.METRICS}", timeout=5).text
        pool_max = samples(text, names.DB_POOL_CONNECTIONS_MAX.name)
        if pool_max == [({}, 3 * 1.0)] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert pool_max == [({}, 3 * 1.0)]  # 3 workers × DB_POOL_MAX 1
    assert len(samples(text, names.BUILD_INFO.name)) == 1
    promtool = shutil.which("promtool")
    assert promtool
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check


def test_in_flight_counts_the_scrape_itself(client: FlaskClient) -> None:
    text = client.get(endpoints.METRICS).get_data(as_text=True)
    assert samples(text, names.HTTP_REQUESTS_IN_FLIGHT.name) == [({}, 1.0)]
    again = client.get(endpoints.METRICS).get_data(as_text=True)
    assert samples(again, names.HTTP_REQUESTS_IN_FLIGHT.name) == [({}, 1.0)]


def test_server_error_series_exist_before_any_error(client: FlaskClient) -> None:
    # rate() cannot see the increment a series is born with: the 5xx series must be there at zero.
    text = client.get(endpoints.METRICS).get_data(as_text=True)
    zeroed = {
        (labels[names.ROUTE], labels[names.METHOD], labels[names.STATUS])
        for labels, value in samples(text, names.HTTP_REQUESTS.total)
        if value == 0
    }
    for status in names.SERVER_ERROR_STATUSES:
        assert (f"{API}/tasks", "POST", status) in zeroed
        assert (f"{API}/tasks/{{task_id}}", "PATCH", status) in zeroed
        assert ("/", "GET", status) in zeroed
    assert not any(route in endpoints.OPERATIONAL_PATHS for route, _, _ in zeroed)
    operations = {labels[names.OPERATION] for labels, _ in samples(text, names.DB_ERRORS.total)}
    assert operations == set(OPERATIONS)


def test_metrics_off_records_nothing_not_even_in_multiprocess_files(database_url: str, tmp_path: Path) -> None:
    """METRICS_ENABLED=false: no /metrics, and no request, query or pool write reaches a multiprocess file."""
    files = tmp_path / "multiproc"
    files.mkdir()
    script = (
        "import json, sys\n"
        "from app import create_app\n"
        "app = create_app(json.loads(sys.argv[1]))\n"
        "client = app.test_client()\n"
        f"assert client.post('{endpoints.API_PREFIX}/tasks', json={{'title': 'quiet'}}).status_code == 201\n"
        f"assert client.get('{endpoints.API_PREFIX}/tasks').status_code == 200\n"
        f"print(client.get('{endpoints.METRICS}').status_code)\n"
    )
    config = json.dumps(app_config(database_url, METRICS_ENABLED="false", LOG_LEVEL="WARNING"))
    # A fresh interpreter: prometheus-client reads the folder's variable when it is imported.
    result = subprocess.run(
        [sys.executable, "-c", script, config],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(files)},
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["404"]
    assert sorted(path.name for path in files.iterdir()) == []
