"""`make hpa-test`: load a deployed environment and prove it scales out, stays within its SLOs, and scales back.

Needs a cluster: a kubeconfig (KUBECONFIG, or ~/.kube/config; context from HPA_TEST_CONTEXT), the
environment's public URL (HPA_TEST_TARGET, e.g. https://taskboard.dev.example.com) or an in-cluster
Locust master (HPA_TEST_LOCUST_URL, e.g. http://127.0.0.1:8089 after `kubectl -n taskboard
port-forward svc/locust-master 8089`), and the cluster's Prometheus (HPA_TEST_PROMETHEUS_URL, e.g.
after `kubectl -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090`).

It reads the HorizontalPodAutoscaler and its scale target (Deployment or Argo Rollout) through the
Kubernetes API and the firing alerts through Prometheus, every few seconds, and asserts:
  1. replicas rise from the HPA's minimum to at least HPA_TEST_MIN_PEAK (default min + 2) within
     HPA_TEST_SCALE_UP_SECONDS of the load starting;
  2. no page-severity alert fires while the load runs;
  3. after the load stops, replicas return to the minimum within HPA_TEST_SCALE_DOWN_SECONDS (the
     HPA's scale-down stabilisation window plus margin).
It writes reports/hpa/: summary.md, summary.json and replicas.png (replicas over time).

The quick manual alternative, from inside the cluster:
    kubectl run -i --tty load-generator --rm --image=busybox:1.37 --restart=Never -- /bin/sh -c \\
      "while sleep 0.01; do wget -q -O- http://taskboard.taskboard/api/v1/stats; done"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from app import endpoints
from app.config import ConfigError, env_float, env_int, env_text
from loadtest import runner
from observability import cluster as cluster_names

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports" / "hpa"


class NoCluster(RuntimeError):
    """No cluster is configured: the test cannot run here (exit 2, with what to set)."""


@dataclass(frozen=True)
class Settings:
    namespace: str
    hpa: str
    target: str | None
    locust_url: str | None
    prometheus_url: str
    users: int
    spawn_rate: float
    min_peak: int | None
    scale_up_seconds: float
    scale_down_seconds: float
    poll_seconds: float
    context: str | None


@dataclass
class Sample:
    at: float
    phase: str
    desired: int
    current: int
    ready: int
    page_alerts: list[str]


@dataclass
class Outcome:
    passed: bool
    min_replicas: int
    max_replicas: int
    peak: int
    wanted_peak: int
    scale_up_seconds: float | None
    scale_down_seconds: float | None
    page_alerts: list[str]
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Cluster:
    """The HPA and its scale target, read through the Kubernetes API."""

    def __init__(self, settings: Settings) -> None:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        try:
            config.load_kube_config(context=settings.context)  # type: ignore[no-untyped-call]
        except (ConfigException, FileNotFoundError, TypeError) as exc:
            raise NoCluster(f"no usable kubeconfig ({exc})") from exc
        self.autoscaling = client.AutoscalingV2Api()
        self.apps = client.AppsV1Api()
        self.custom = client.CustomObjectsApi()
        self.namespace = settings.namespace
        self.hpa_name = settings.hpa

    def hpa(self) -> Any:
        return self.autoscaling.read_namespaced_horizontal_pod_autoscaler(self.hpa_name, self.namespace)

    def ready_replicas(self, kind: str, name: str) -> int:
        if kind == "Deployment":
            status = self.apps.read_namespaced_deployment_status(name, self.namespace).status
            return int(status.ready_replicas or 0) if status else 0
        if kind == "Rollout":
            rollout: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                "argoproj.io", "v1alpha1", self.namespace, "rollouts", name
            )
            return int(rollout.get("status", {}).get("readyReplicas") or 0)
        raise ValueError(f"the HPA scales a {kind}; only Deployment and Rollout are known")


def page_alerts(prometheus_url: str) -> list[str]:
    """Names of the page-severity alerts firing now."""
    response = requests.get(
        f"{prometheus_url}/api/v1/query", params={"query": 'ALERTS{alertstate="firing",severity="page"}'}, timeout=10
    )
    response.raise_for_status()
    return sorted({series["metric"]["alertname"] for series in response.json()["data"]["result"]})


@contextmanager
def load(settings: Settings, out: Path) -> Iterator[None]:
    """Locust for as long as the block runs: in-cluster through its master's API, or from here."""
    if settings.locust_url:
        swarm = {"user_count": settings.users, "spawn_rate": settings.spawn_rate}
        if settings.target:
            swarm["host"] = settings.target  # type: ignore[assignment]
        requests.post(f"{settings.locust_url}/swarm", data=swarm, timeout=10).raise_for_status()
        try:
            yield
        finally:
            requests.get(f"{settings.locust_url}/stop", timeout=10)
        return
    assert settings.target
    with runner.headless(settings.target, out, users=settings.users, spawn_rate=settings.spawn_rate):
        yield


def observe(cluster: Cluster, settings: Settings, out: Path) -> Outcome:
    hpa = cluster.hpa()
    minimum, maximum = int(hpa.spec.min_replicas or 1), int(hpa.spec.max_replicas)
    kind, name = hpa.spec.scale_target_ref.kind, hpa.spec.scale_target_ref.name
    wanted = min(settings.min_peak or minimum + 2, maximum)
    samples: list[Sample] = []
    started = time.time()

    def sample(phase: str) -> Sample:
        current = cluster.hpa()
        s = Sample(
            at=round(time.time() - started, 1),
            phase=phase,
            desired=int(current.status.desired_replicas or 0),
            current=int(current.status.current_replicas or 0),
            ready=cluster.ready_replicas(kind, name),
            page_alerts=page_alerts(settings.prometheus_url),
        )
        samples.append(s)
        return s

    failures: list[str] = []
    first = sample("before")
    if first.current > minimum:
        failures.append(f"{kind} {name} runs {first.current} replicas before the load, not the minimum {minimum}")

    scale_up: float | None = None
    load_started = time.time()
    with load(settings, out):
        while time.time() - load_started < settings.scale_up_seconds:
            s = sample("load")
            if s.ready >= wanted and scale_up is None:
                scale_up = round(time.time() - load_started, 1)
                break
            time.sleep(settings.poll_seconds)
        # Hold the load briefly at the peak: a page alert that comes with new pods shows up here.
        hold_until = time.time() + 3 * settings.poll_seconds
        while time.time() < hold_until:
            sample("load")
            time.sleep(settings.poll_seconds)

    scale_down: float | None = None
    load_stopped = time.time()
    while time.time() - load_stopped < settings.scale_down_seconds:
        s = sample("after")
        if s.current <= minimum and s.desired <= minimum:
            scale_down = round(time.time() - load_stopped, 1)
            break
        time.sleep(settings.poll_seconds)

    peak = max(s.ready for s in samples)
    alerts = sorted({a for s in samples if s.phase == "load" for a in s.page_alerts})
    if scale_up is None:
        failures.append(f"ready replicas reached {peak}, not {wanted}, within {settings.scale_up_seconds:.0f} s")
    if alerts:
        failures.append(f"page alerts fired while scaling out: {', '.join(alerts)}")
    if scale_down is None:
        failures.append(f"replicas did not return to {minimum} within {settings.scale_down_seconds:.0f} s")
    return Outcome(
        passed=not failures,
        min_replicas=minimum,
        max_replicas=maximum,
        peak=peak,
        wanted_peak=wanted,
        scale_up_seconds=scale_up,
        scale_down_seconds=scale_down,
        page_alerts=alerts,
        samples=samples,
        failures=failures,
    )


def markdown(outcome: Outcome, settings: Settings) -> str:
    verdict = "✅ passed" if outcome.passed else "❌ FAILED"
    lines = [
        f"# HPA scaling test {verdict}",
        "",
        f"HPA {settings.namespace}/{settings.hpa}: min {outcome.min_replicas}, max {outcome.max_replicas}; "
        f"{settings.users} Locust users.",
        "",
        "| check | expected | measured |",
        "|---|---|---|",
        f"| scale out | ≥ {outcome.wanted_peak} ready within {settings.scale_up_seconds:.0f} s | "
        f"{outcome.peak} ready{f' after {outcome.scale_up_seconds} s' if outcome.scale_up_seconds else ''} |",
        f"| page alerts while loaded | none | {', '.join(outcome.page_alerts) or 'none'} |",
        f"| scale in | {outcome.min_replicas} within {settings.scale_down_seconds:.0f} s | "
        f"{'after ' + str(outcome.scale_down_seconds) + ' s' if outcome.scale_down_seconds is not None else 'no'} |",
    ]
    if outcome.failures:
        lines += ["", *(f"- {failure}" for failure in outcome.failures)]
    return "\n".join(lines) + "\n"


def chart(outcome: Outcome, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    xs = [s.at for s in outcome.samples]
    ax.step(xs, [s.desired for s in outcome.samples], where="post", label="desired")
    ax.step(xs, [s.ready for s in outcome.samples], where="post", label="ready")
    ax.axhline(outcome.max_replicas, color="grey", ls="--", lw=1, label="max")
    ax.axhline(outcome.min_replicas, color="grey", ls=":", lw=1, label="min")
    loaded = [s.at for s in outcome.samples if s.phase == "load"]
    if loaded:
        ax.axvspan(min(loaded), max(loaded), color="tab:orange", alpha=0.1, lw=0, label="load")
    ax.set_xlabel("seconds")
    ax.set_ylabel("replicas")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "replicas.png")
    plt.close(fig)


def settings_from(env: dict[str, str], args: argparse.Namespace) -> Settings:
    target = args.target or env.get("HPA_TEST_TARGET")
    locust_url = args.locust_url or env.get("HPA_TEST_LOCUST_URL")
    prometheus_url = args.prometheus_url or env.get("HPA_TEST_PROMETHEUS_URL")
    if not (target or locust_url):
        raise NoCluster("set HPA_TEST_TARGET (the environment's URL) or HPA_TEST_LOCUST_URL (an in-cluster Locust)")
    if not prometheus_url:
        raise NoCluster("set HPA_TEST_PROMETHEUS_URL (the cluster's Prometheus, e.g. through kubectl port-forward)")
    return Settings(
        namespace=env_text(env, "HPA_TEST_NAMESPACE", cluster_names.load().app_namespace),
        hpa=env_text(env, "HPA_TEST_HPA", endpoints.SERVICE_NAME),
        target=target,
        locust_url=locust_url,
        prometheus_url=prometheus_url,
        users=env_int(env, "HPA_TEST_USERS", 200, 1, 100_000),
        spawn_rate=env_float(env, "HPA_TEST_SPAWN_RATE", 20, 0.1, 10_000),
        min_peak=env_int(env, "HPA_TEST_MIN_PEAK", 0, 1, 1_000) or None,
        scale_up_seconds=env_float(env, "HPA_TEST_SCALE_UP_SECONDS", 300, 1, 86_400),
        scale_down_seconds=env_float(env, "HPA_TEST_SCALE_DOWN_SECONDS", 600, 1, 86_400),
        poll_seconds=env_float(env, "HPA_TEST_POLL_SECONDS", 5, 0.1, 3_600),
        context=env.get("HPA_TEST_CONTEXT") or None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.hpa_test", description=__doc__.splitlines()[0])
    parser.add_argument("--target")
    parser.add_argument("--locust-url")
    parser.add_argument("--prometheus-url")
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    try:
        settings = settings_from(dict(os.environ), args)
        cluster = Cluster(settings)
    except NoCluster as exc:
        print(
            f"make hpa-test needs a cluster: {exc}. See loadtest/hpa_test.py and docs/operations.md.", file=sys.stderr
        )
        return 2
    except ConfigError as exc:
        print(f"make hpa-test: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    outcome = observe(cluster, settings, args.out)
    (args.out / "summary.json").write_text(json.dumps(asdict(outcome), indent=2))
    text = markdown(outcome, settings)
    (args.out / "summary.md").write_text(text)
    chart(outcome, args.out)
    print(text)
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
