"""The HPA test's logic against a fake Kubernetes API that scales on the real load, and a real Prometheus.

The fake API plays the HPA controller: each read of the HPA turns the request rate it sees on the
served app's /metrics into a desired replica count (between the HPA's min and max), and ready
replicas follow one read later, so replicas rise only while Locust really loads the app.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app import endpoints
from app import metric_names as names
from loadtest import hpa_test
from local.stack import Stack, wait_http
from tests.conftest import ROOT, free_port
from tests.tiers import slow_fixture

NAMESPACE = "taskboard"
MIN, MAX = 2, 6
RPS_PER_POD = 3.0


def _requests_total(app_url: str) -> float:
    text = requests.get(f"{app_url}{endpoints.METRICS}", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == names.HTTP_REQUESTS.total and sample.labels[names.ROUTE] not in endpoints.OPERATIONAL_PATHS
    )


class FakeKubernetes(BaseHTTPRequestHandler):
    app_url: ClassVar[str] = ""
    kind: ClassVar[str] = "Deployment"
    state: ClassVar[dict[str, float]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    def _scale(self) -> None:
        with self.lock:
            now, total = time.monotonic(), _requests_total(self.app_url)
            if "at" in self.state and now - self.state["at"] >= 1.0:
                rate = (total - self.state["total"]) / (now - self.state["at"])
                self.state["ready"] = self.state["desired"]
                self.state["desired"] = max(MIN, min(MAX, math.ceil(rate / RPS_PER_POD)))
                self.state.update(at=now, total=total)
            elif "at" not in self.state:
                self.state.update(at=now, total=total, desired=MIN, ready=MIN)

    def do_GET(self) -> None:
        base = f"/namespaces/{NAMESPACE}"
        if self.path == f"/apis/autoscaling/v2{base}/horizontalpodautoscalers/taskboard":
            self._scale()
            body: dict[str, Any] = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "taskboard", "namespace": NAMESPACE},
                "spec": {
                    "minReplicas": MIN,
                    "maxReplicas": MAX,
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": self.kind, "name": "taskboard"},
                },
                "status": {"currentReplicas": int(self.state["ready"]), "desiredReplicas": int(self.state["desired"])},
            }
        elif self.path == f"/apis/apps/v1{base}/deployments/taskboard/status":
            labels = {"app.kubernetes.io/name": "taskboard"}
            body = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "taskboard", "namespace": NAMESPACE},
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "taskboard:test"}]},
                    },
                },
                "status": {"readyReplicas": int(self.state.get("ready", MIN))},
            }
        elif self.path == f"/apis/argoproj.io/v1alpha1{base}/rollouts/taskboard":
            body = {"kind": "Rollout", "status": {"readyReplicas": int(self.state.get("ready", MIN))}}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    servers: list[ThreadingHTTPServer] = []

    def start(app_url: str, kind: str) -> Path:
        FakeKubernetes.app_url, FakeKubernetes.kind, FakeKubernetes.state = app_url, kind, {}
        server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeKubernetes)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}
                    ],
                    "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                    "current-context": "fake",
                }
            )
        )
        return kubeconfig

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
@slow_fixture("starts Prometheus")
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[dict[str, Any]]], str]]:
    """A real Prometheus evaluating the given alert rules every second."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(rules: list[dict[str, Any]]) -> str:
        rule_file = tmp_path / "rules.yml"
        rule_file.write_text(yaml.safe_dump({"groups": [{"name": "test", "rules": rules}]}))
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"evaluation_interval": "1s"}, "rule_files": [str(rule_file)]}))
        port = free_port()
        binary = shutil.which("prometheus")
        assert binary, "prometheus missing: make test installs the Debian package"
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", 30)
        time.sleep(2)  # a couple of evaluations
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(30)


def run_hpa_test(env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "HPA_TEST_USERS": "12",
        "HPA_TEST_SPAWN_RATE": "12",
        "HPA_TEST_POLL_SECONDS": "0.5",
        "HPA_TEST_SCALE_UP_SECONDS": "25",
        "HPA_TEST_SCALE_DOWN_SECONDS": "20",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "loadtest.hpa_test", "--out", str(out)],
        env=full, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_scales_out_and_back_with_no_page_alert(
    served_app: Callable[..., Stack], fake_cluster: Callable[[str, str], Path], prometheus: Any, tmp_path: Path
) -> None:
    stack = served_app(workers=2)
    kubeconfig = fake_cluster(stack.settings.app_url, "Deployment")
    prom = prometheus([{"alert": "Quiet", "expr": "vector(1)", "labels": {"severity": "ticket"}}])
    result = run_hpa_test(
        {"KUBECONFIG": str(kubeconfig), "HPA_TEST_TARGET": stack.settings.app_url, "HPA_TEST_PROMETHEUS_URL": prom},
        tmp_path / "report",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["peak"] >= MIN + 2
    assert summary["scale_up_seconds"] is not None and summary["scale_down_seconds"] is not None
    assert {s["phase"] for s in summary["samples"]} == {"before", "load", "after"}
    assert (tmp_path / "report" / "replicas.png").stat().st_size > 5_000


def test_fails_when_a_page_alert_fires_while_scaling(
    served_app: Callable[..., Stack], fake_cluster: Callable[[str, str], Path], prometheus: Any, tmp_path: Path
) -> None:
    stack = served_app(workers=2)
    kubeconfig = fake_cluster(stack.settings.app_url, "Rollout")
    prom = prometheus([{"alert": "Burning", "expr": "vector(1)", "labels": {"severity": "page"}}])
    # The in-cluster path: a Locust master whose web API the test drives.
    web_port = free_port()
    master = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtest" / "locustfile.py"), "--host",
         stack.settings.app_url, "--web-host", "127.0.0.1", "--web-port", str(web_port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{web_port}/", 30)
        result = run_hpa_test(
            {
                "KUBECONFIG": str(kubeconfig),
                "HPA_TEST_LOCUST_URL": f"http://127.0.0.1:{web_port}",
                "HPA_TEST_PROMETHEUS_URL": prom,
            },
            tmp_path / "report",
        )
    finally:
        master.terminate()
        master.wait(30)
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["page_alerts"] == ["Burning"]
    assert any("page alerts fired" in failure for failure in summary["failures"])
    assert summary["peak"] >= MIN + 2  # the swarm really loaded the app


def test_says_what_to_set_without_a_cluster(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPA_TEST_")}
    env["KUBECONFIG"] = str(tmp_path / "absent")
    result = subprocess.run(
        [sys.executable, "-m", "loadtest.hpa_test", "--out", str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "needs a cluster" in result.stderr and "HPA_TEST_TARGET" in result.stderr


def test_a_bad_setting_is_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HPA_TEST_TARGET", "https://taskboard.dev.example.com")
    monkeypatch.setenv("HPA_TEST_PROMETHEUS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HPA_TEST_USERS", "lots")
    assert hpa_test.main([]) == 2
    assert capsys.readouterr().err.strip() == "make hpa-test: HPA_TEST_USERS: must be an integer, got 'lots'"
