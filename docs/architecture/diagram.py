#!/usr/bin/env python3
"""Draw docs/architecture/architecture.png: one environment of the task board on AWS, from code.

    .venv/bin/python docs/architecture/diagram.py [--out DIR]

Uses the `diagrams` package and Graphviz's `dot` (Debian package graphviz). Namespaces come from
infra/cluster.yaml; every Helm release of infra/addons/ is one node of ADDONS (tests/docs checks that the
two lists agree, and that the committed PNG is what this script draws). Edge colours: the request path,
metrics, logs, traces, and control (GitOps, secrets, DNS, load balancers).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from diagrams import Cluster, Diagram, Edge  # type: ignore[import-untyped]
from diagrams.aws.analytics import AmazonOpensearchService  # type: ignore[import-untyped]
from diagrams.aws.compute import ECR  # type: ignore[import-untyped]
from diagrams.aws.database import RDSPostgresqlInstance  # type: ignore[import-untyped]
from diagrams.aws.general import Users  # type: ignore[import-untyped]
from diagrams.aws.management import Cloudwatch  # type: ignore[import-untyped]
from diagrams.aws.network import ALB, NATGateway, Route53  # type: ignore[import-untyped]
from diagrams.aws.security import ACM, SecretsManager  # type: ignore[import-untyped]
from diagrams.k8s.clusterconfig import HPA  # type: ignore[import-untyped]
from diagrams.k8s.compute import Deployment, Job  # type: ignore[import-untyped]
from diagrams.onprem.ci import GithubActions  # type: ignore[import-untyped]
from diagrams.onprem.gitops import ArgoCD  # type: ignore[import-untyped]
from diagrams.onprem.logging import FluentBit  # type: ignore[import-untyped]
from diagrams.onprem.monitoring import Grafana, Prometheus  # type: ignore[import-untyped]
from diagrams.onprem.network import Internet  # type: ignore[import-untyped]
from diagrams.onprem.tracing import Jaeger  # type: ignore[import-untyped]
from diagrams.onprem.vcs import Github  # type: ignore[import-untyped]
from diagrams.saas.alerting import Pagerduty  # type: ignore[import-untyped]
from diagrams.saas.chat import Slack  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent.parent
OUT = Path(__file__).resolve().parent
NAME = "architecture"
FONT = "DejaVu Sans"  # named, not "Sans-Serif": the same font on every Debian machine (fonts-dejavu-core)

REQUEST = {"color": "#1f6fb2", "penwidth": "2.0"}
METRICS = {"color": "#e07b00"}
LOGS = {"color": "#2e8b57"}
TRACES = {"color": "#7b3fb0"}
CONTROL = {"color": "#7f8c8d", "style": "dashed"}


@dataclass(frozen=True)
class Addon:
    """A Helm release of infra/addons: where it runs (a namespace key of infra/cluster.yaml) and its label."""

    namespace_key: str
    label: str
    icon: Callable[..., Any]


# Chart name → node. tests/docs compares the keys with the charts of infra/addons/*.tf.
ADDONS = {
    "kube-prometheus-stack": Addon("monitoring", "Prometheus\n(kube-prometheus-stack)", Prometheus),
    "prometheus-yet-another-cloudwatch-exporter": Addon("monitoring", "CloudWatch exporter (YACE)", Prometheus),
    "fluent-bit": Addon("logging", "Fluent Bit (DaemonSet)", FluentBit),
    "jaeger": Addon("tracing", "Jaeger v2 (OTLP in)", Jaeger),
    "argo-cd": Addon("argocd", "Argo CD", ArgoCD),
    "argocd-apps": Addon("argocd", "root Application\n(app of apps: k8s/argocd/)", ArgoCD),
    "argo-rollouts": Addon("argo_rollouts", "Argo Rollouts\n(prod canary)", ArgoCD),
    "external-secrets": Addon("external_secrets", "External Secrets", SecretsManager),
    "external-secrets-config": Addon("external_secrets", "ClusterSecretStore", SecretsManager),
    "aws-load-balancer-controller": Addon("load_balancer_controller", "AWS Load Balancer Controller", ALB),
    "external-dns": Addon("external_dns", "ExternalDNS", Route53),
    "metrics-server": Addon("load_balancer_controller", "metrics-server (HPA)", HPA),
}


def _id(text: str) -> str:
    """A stable Graphviz node id (diagrams picks random ones, which would change the output every run)."""
    return "n_" + "".join(ch if ch.isalnum() else "_" for ch in text.lower())


def node(icon: Callable[..., Any], label: str) -> Any:
    return icon(label, nodeid=_id(label))


def draw(out: Path) -> Path:
    cluster_names: dict[str, Any] = yaml.safe_load((ROOT / "infra" / "cluster.yaml").read_text())
    app_namespace = cluster_names["app"]["namespace"]
    ingress_group = cluster_names["load_balancer_controller"]["ingress_group"]
    text = {"fontname": FONT, "fontsize": "12"}
    graph_attr = {**text, "fontsize": "20", "pad": "0.4", "nodesep": "0.5", "ranksep": "1.0", "splines": "spline"}
    cluster_attr = {"fontname": FONT}

    out.mkdir(parents=True, exist_ok=True)
    with Diagram(
        "Task board on AWS: one environment (dev, uat and prod are alike)",
        filename=str(out / NAME),
        outformat="png",
        show=False,
        direction="LR",
        graph_attr=graph_attr,
        node_attr=text,
        edge_attr={**text, "fontsize": "10"},
    ):
        users = node(Users, "users")
        github = node(Github, "GitHub repository\n(k8s/ overlays)")
        actions = node(GithubActions, "GitHub Actions\n(OIDC: plan, apply, push roles)")
        pager = node(Pagerduty, "PagerDuty (page)")
        chat = node(Slack, "Slack (ticket)")
        internet = node(Internet, "internet")

        with Cluster("AWS account, one region", graph_attr=cluster_attr):
            dns = node(Route53, "Route 53 zone")
            acm = node(ACM, "ACM certificate")
            ecr = node(ECR, "ECR repository\n(immutable tags, scan on push)")
            secrets = node(SecretsManager, "Secrets Manager\n(RDS-managed password)")
            cloudwatch = node(Cloudwatch, "CloudWatch\n(RDS, OpenSearch, ALB)")

            with Cluster("VPC", graph_attr=cluster_attr):
                with Cluster("public subnets, one per zone", graph_attr=cluster_attr):
                    alb = node(ALB, f"ALB\n(IngressGroup {ingress_group})")
                    nat = node(NATGateway, "NAT gateway\n(1 in dev/uat, 1 per zone in prod)")

                with Cluster("private subnets", graph_attr=cluster_attr):
                    with Cluster("EKS (managed node group, AL2023)", graph_attr=cluster_attr):
                        with Cluster(f"namespace {app_namespace}", graph_attr=cluster_attr):
                            app = node(Deployment, "taskboard\n(gunicorn sync workers;\nRollout in prod)")
                            hpa = node(HPA, "HPA (CPU)")
                            migrate = node(Job, "migration Job\n(Argo CD PreSync)")
                        addons = _addon_nodes(cluster_names)
                    opensearch = node(AmazonOpensearchService, "OpenSearch\n(logs, traces)")

                with Cluster("database subnets", graph_attr=cluster_attr):
                    rds = node(RDSPostgresqlInstance, "RDS PostgreSQL 18\n(Multi-AZ in uat, prod)")

        prometheus = addons["kube-prometheus-stack"]
        grafana, alertmanager = addons["grafana"], addons["alertmanager"]

        # The request path.
        users >> Edge(label="HTTPS", **REQUEST) >> dns
        dns >> Edge(**REQUEST) >> alb
        acm >> Edge(label="TLS", **CONTROL) >> alb
        alb >> Edge(label="target groups", **REQUEST) >> app
        app >> Edge(label="SQL (TLS)", **REQUEST) >> rds
        migrate >> Edge(label="schema", **REQUEST) >> rds
        hpa >> Edge(**CONTROL) >> app
        app >> Edge(label="egress", **CONTROL) >> nat >> Edge(**CONTROL) >> internet

        # Metrics → Prometheus → Grafana and Alertmanager → on-call.
        app >> Edge(label="scrape /metrics", **METRICS) >> prometheus
        cloudwatch >> Edge(**METRICS) >> addons["prometheus-yet-another-cloudwatch-exporter"]
        addons["prometheus-yet-another-cloudwatch-exporter"] >> Edge(**METRICS) >> prometheus
        prometheus >> Edge(label="PromQL", **METRICS) >> grafana
        prometheus >> Edge(label="burn-rate alerts", **METRICS) >> alertmanager
        alertmanager >> Edge(**METRICS) >> pager
        alertmanager >> Edge(**METRICS) >> chat

        # Logs → Fluent Bit → OpenSearch; traces → Jaeger → OpenSearch.
        app >> Edge(label="JSON logs (stdout)", **LOGS) >> addons["fluent-bit"]
        addons["fluent-bit"] >> Edge(label="SigV4", **LOGS) >> opensearch
        app >> Edge(label="OTLP/HTTP :4318", **TRACES) >> addons["jaeger"]
        addons["jaeger"] >> Edge(label="tail-sampled spans", **TRACES) >> opensearch
        grafana >> Edge(label="logs, traces", **CONTROL) >> opensearch

        # Delivery and control.
        actions >> Edge(label="push image", **CONTROL) >> ecr
        ecr >> Edge(label="pull", **CONTROL) >> app
        github >> Edge(label="sync", **CONTROL) >> addons["argocd-apps"]
        addons["argocd-apps"] >> Edge(**CONTROL) >> addons["argo-cd"]
        addons["argo-cd"] >> Edge(**CONTROL) >> app
        addons["argo-rollouts"] >> Edge(label="canary + SLO analysis", **CONTROL) >> app
        secrets >> Edge(**CONTROL) >> addons["external-secrets"]
        addons["external-secrets-config"] >> Edge(**CONTROL) >> addons["external-secrets"]
        addons["external-secrets"] >> Edge(label="DATABASE_URL file", **CONTROL) >> app
        addons["aws-load-balancer-controller"] >> Edge(**CONTROL) >> alb
        addons["external-dns"] >> Edge(**CONTROL) >> dns
        addons["metrics-server"] >> Edge(**CONTROL) >> hpa
    return out / f"{NAME}.png"


# Parts of kube-prometheus-stack drawn on their own: the metrics path goes through them.
STACK_PARTS = {
    "grafana": Addon("monitoring", "Grafana", Grafana),
    "alertmanager": Addon("monitoring", "Alertmanager", Prometheus),
}


def _addon_nodes(cluster_names: dict[str, Any]) -> dict[str, Any]:
    """One cluster per namespace, holding the add-ons that run there (in the order of ADDONS)."""
    parts = {**ADDONS, **STACK_PARTS}
    by_namespace: dict[str, list[str]] = {}
    for key, addon in parts.items():
        by_namespace.setdefault(cluster_names[addon.namespace_key]["namespace"], []).append(key)
    nodes: dict[str, Any] = {}
    for namespace, keys in by_namespace.items():
        with Cluster(f"namespace {namespace}", graph_attr={"fontname": FONT}):
            for key in keys:
                nodes[key] = node(parts[key].icon, parts[key].label)
    return nodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diagram.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for architecture.png (default: this one)")
    args = parser.parse_args(argv)
    try:
        png = draw(args.out)
    except Exception as exc:  # graphviz raises its own ExecutableNotFound when dot is missing
        if type(exc).__name__ == "ExecutableNotFound":
            print("diagram.py: Graphviz's dot not found: install the Debian package graphviz", file=sys.stderr)
            return 1
        raise
    print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
