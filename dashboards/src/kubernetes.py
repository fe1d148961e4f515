"""Kubernetes and scaling: replicas against desired and maximum, CPU against requests, throttling, restarts.

Most panels read kube-state-metrics, cAdvisor and the Argo Rollouts controller, which exist only in the
cluster; the load spread across instances comes from the service itself.
"""

from __future__ import annotations

from app import metric_names as names
from dashboards.builder import Dashboard, Panel, Query, Row, namespace_sel, sel
from dashboards.src.traffic import RATE, request_rate
from observability.cluster_metrics import metric

UID = "taskboard-kubernetes"
KSM, CADVISOR, ROLLOUTS = "kube-state-metrics", "cadvisor", "argo-rollouts"
CONTAINERS = 'container!="",container!="POD"'


def _ksm(name: str, *extra: str) -> str:
    return namespace_sel(metric(KSM, name), *extra)


def _cadvisor(name: str) -> str:
    return namespace_sel(metric(CADVISOR, name), CONTAINERS)


def dashboard() -> Dashboard:
    hpa = "horizontalpodautoscaler"
    cpu_requests = _ksm("kube_pod_container_resource_requests", 'resource="cpu"')
    memory_limits = _ksm("kube_pod_container_resource_limits", 'resource="memory"')
    not_ready = _ksm("kube_pod_status_ready", 'condition="false"')
    throttled = _cadvisor("container_cpu_cfs_throttled_periods_total")
    periods = _cadvisor("container_cpu_cfs_periods_total")
    restarts = _ksm("kube_pod_container_status_restarts_total")
    return Dashboard(
        uid=UID,
        title="Task board / Kubernetes and scaling",
        description="The workload in its namespace: replicas, CPU and memory against requests and limits, restarts.",
        rows=[
            Row(
                "Replicas",
                [
                    Panel(
                        "HPA replicas: current, desired, min, max",
                        [
                            Query(
                                _ksm("kube_horizontalpodautoscaler_status_current_replicas"), f"{{{{{hpa}}}}} current"
                            ),
                            Query(
                                _ksm("kube_horizontalpodautoscaler_status_desired_replicas"), f"{{{{{hpa}}}}} desired"
                            ),
                            Query(_ksm("kube_horizontalpodautoscaler_spec_min_replicas"), f"{{{{{hpa}}}}} min"),
                            Query(_ksm("kube_horizontalpodautoscaler_spec_max_replicas"), f"{{{{{hpa}}}}} max"),
                        ],
                        width=12,
                        cluster_only=KSM,
                    ),
                    Panel(
                        "Rollout and Deployment replicas: available against desired",
                        [
                            Query(
                                namespace_sel(metric(ROLLOUTS, "rollout_info_replicas_available")), "{{name}} available"
                            ),
                            Query(namespace_sel(metric(ROLLOUTS, "rollout_info_replicas_desired")), "{{name}} desired"),
                            Query(_ksm("kube_deployment_status_replicas_available"), "{{deployment}} available"),
                            Query(_ksm("kube_deployment_spec_replicas"), "{{deployment}} desired"),
                        ],
                        width=12,
                        cluster_only=f"{ROLLOUTS}, {KSM}",
                    ),
                ],
            ),
            Row(
                "Resources",
                [
                    Panel(
                        "CPU used against requested, per pod",
                        [
                            Query(
                                f"sum by (pod) (rate({_cadvisor('container_cpu_usage_seconds_total')}[{RATE}]))",
                                "{{pod}} used",
                            ),
                            Query(
                                f"sum by (pod) ({cpu_requests})",
                                "{{pod}} requested",
                            ),
                        ],
                        unit="cores",
                        cluster_only=f"{CADVISOR}, {KSM}",
                    ),
                    Panel(
                        "CPU throttling, per pod",
                        [
                            Query(
                                f"sum by (pod) (rate({throttled}[{RATE}]))\n/\nsum by (pod) (rate({periods}[{RATE}]))",
                                "{{pod}}",
                            )
                        ],
                        unit="percentunit",
                        description="Share of CFS periods in which the container was throttled by its CPU limit.",
                        cluster_only=CADVISOR,
                        thresholds=(("green", None), ("orange", 0.25)),
                    ),
                    Panel(
                        "Memory working set against limit, per pod",
                        [
                            Query(f"sum by (pod) ({_cadvisor('container_memory_working_set_bytes')})", "{{pod}} used"),
                            Query(
                                f"sum by (pod) ({memory_limits})",
                                "{{pod}} limit",
                            ),
                        ],
                        unit="bytes",
                        cluster_only=f"{CADVISOR}, {KSM}",
                    ),
                ],
            ),
            Row(
                "Health and load spread",
                [
                    Panel(
                        "Container restarts (per hour)",
                        [
                            Query(
                                f"sum by (pod, container) (increase({restarts}[1h]))",
                                "{{pod}} {{container}}",
                            )
                        ],
                        cluster_only=KSM,
                    ),
                    Panel(
                        "Pods not ready",
                        [Query(f"sum({not_ready})", "not ready")],
                        cluster_only=KSM,
                    ),
                    Panel(
                        "Requests per second per instance",
                        [
                            Query(request_rate("instance"), "{{instance}}"),
                            Query(
                                f"sum by (instance) ({sel(names.HTTP_REQUESTS_IN_FLIGHT.name)})",
                                "{{instance}} in flight",
                            ),
                        ],
                        unit="reqps",
                        description="From the service itself: how evenly the load balancer spreads requests.",
                    ),
                ],
            ),
        ],
    )
