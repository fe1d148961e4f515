"""Names the cluster add-ons and the workload agree on, read from infra/cluster.yaml (never retyped here)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from observability.paths import ROOT

CLUSTER_FILE = ROOT / "infra" / "cluster.yaml"


@dataclass(frozen=True)
class Cluster:
    """The repository, namespaces and labels observability needs from infra/cluster.yaml."""

    repository: str  # owner/name on GitHub
    app_namespace: str
    monitoring_namespace: str
    monitoring_release: str
    rule_selector_labels: dict[str, str]
    grafana_dashboard_label: dict[str, str]
    logging_namespace: str
    logging_service_account: str
    tracing_namespace: str
    tracing_service: str
    database_max_connections: int

    @property
    def prometheus_url(self) -> str:
        """The in-cluster URL of kube-prometheus-stack's Prometheus (service ``<release>-prometheus``)."""
        return f"http://{self.monitoring_release}-prometheus.{self.monitoring_namespace}.svc:9090"


@cache
def load(path: Path = CLUSTER_FILE) -> Cluster:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    monitoring = data["monitoring"]
    return Cluster(
        repository=data["repository"]["owner_name"],
        app_namespace=data["app"]["namespace"],
        monitoring_namespace=monitoring["namespace"],
        monitoring_release=monitoring["release"],
        rule_selector_labels={k: str(v) for k, v in monitoring["selector_labels"].items()},
        grafana_dashboard_label={k: str(v) for k, v in monitoring["grafana_dashboard_label"].items()},
        logging_namespace=data["logging"]["namespace"],
        logging_service_account=data["logging"]["service_account"],
        tracing_namespace=data["tracing"]["namespace"],
        tracing_service=data["tracing"]["service"],
        database_max_connections=int(data["database"]["max_connections"]),
    )
