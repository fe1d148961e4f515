"""Alerts on the workload in Kubernetes: restarts, crash loops, the HPA ceiling, unavailable replicas.

All of these read kube-state-metrics (and the Argo Rollouts controller), which run only in the
cluster; the names come from observability/cluster-metrics.yaml. They select the app namespace of
infra/cluster.yaml, so any Deployment, Rollout or HPA the k8s/ manifests put there is covered.
"""

from __future__ import annotations

from app import endpoints
from observability import cluster, promql
from observability.cluster_metrics import metric
from observability.rules import Alert, Group, RuleFile

RESTARTS = 3  # container restarts within RESTARTS_WINDOW
RESTARTS_WINDOW = "1h"
CRASH_LOOP_FOR = "15m"
HPA_MAXED_FOR = "30m"
UNAVAILABLE_FOR = "15m"

KSM = "kube-state-metrics"


def alerts() -> list[Alert]:
    namespace = {"namespace": cluster.load().app_namespace}
    restarts = promql.selector(metric(KSM, "kube_pod_container_status_restarts_total"), namespace)
    waiting = promql.selector(
        metric(KSM, "kube_pod_container_status_waiting_reason"), {**namespace, "reason": "CrashLoopBackOff"}
    )
    current = promql.selector(metric(KSM, "kube_horizontalpodautoscaler_status_current_replicas"), namespace)
    maximum = promql.selector(metric(KSM, "kube_horizontalpodautoscaler_spec_max_replicas"), namespace)
    deployment = promql.selector(metric(KSM, "kube_deployment_status_replicas_unavailable"), namespace)
    rollout = promql.selector(metric("argo-rollouts", "rollout_info_replicas_unavailable"), namespace)
    return [
        Alert(
            name="TaskboardPodRestarting",
            expr=f"increase({restarts}[{RESTARTS_WINDOW}]) >= {RESTARTS}",
            severity="ticket",
            summary="Container {{ $labels.container }} of {{ $labels.pod }} restarted {{ $value | humanize }} times",
            description=(
                "Container {{ $labels.container }} in pod {{ $labels.pod }} (namespace {{ $labels.namespace }}) "
                f"restarted at least {RESTARTS} times in {RESTARTS_WINDOW}: it is being OOM-killed, fails its "
                "liveness probe, or exits on its own."
            ),
        ),
        Alert(
            name="TaskboardPodCrashLooping",
            expr=f"max_over_time({waiting}[5m]) >= 1",
            for_=CRASH_LOOP_FOR,
            severity="ticket",
            summary="Container {{ $labels.container }} of {{ $labels.pod }} is in CrashLoopBackOff",
            description=(
                "Container {{ $labels.container }} in pod {{ $labels.pod }} (namespace {{ $labels.namespace }}) "
                f"has been waiting in CrashLoopBackOff for {CRASH_LOOP_FOR}: it starts and dies again; the "
                "kubelet backs off longer after every attempt."
            ),
        ),
        Alert(
            name="TaskboardHPAMaxedOut",
            expr=f"{current}\n>=\n{maximum}",
            for_=HPA_MAXED_FOR,
            severity="ticket",
            summary="HPA {{ $labels.horizontalpodautoscaler }} has run at its maximum replicas for " + HPA_MAXED_FOR,
            description=(
                "HorizontalPodAutoscaler {{ $labels.horizontalpodautoscaler }} (namespace {{ $labels.namespace }}) "
                f"has been at maxReplicas ({{{{ $value }}}}) for {HPA_MAXED_FOR}: it wants more capacity than it "
                "may take, so further load turns into latency and errors."
            ),
        ),
        Alert(
            name="TaskboardReplicasUnavailable",
            expr=f"({deployment} > 0)\nor\n({rollout} > 0)",
            for_=UNAVAILABLE_FOR,
            severity="ticket",
            summary=(
                f"{endpoints.SERVICE_NAME} workload {{{{ $labels.deployment }}}}{{{{ $labels.name }}}} has "
                "{{ $value }} unavailable replicas"
            ),
            description=(
                "Deployment or Rollout {{ $labels.deployment }}{{ $labels.name }} in namespace "
                f"{{{{ $labels.namespace }}}} has had {{{{ $value }}}} unavailable replicas for {UNAVAILABLE_FOR}: "
                "pods cannot be scheduled, pull their image, or pass readiness; a rollout may be stuck."
            ),
        ),
    ]


def rule_file() -> RuleFile:
    return RuleFile(
        filename=f"{endpoints.SERVICE_NAME}-kubernetes.yml",
        about="Alerts on the task board's pods, HPA, Deployment and Rollout (kube-state-metrics, Argo Rollouts).",
        groups=[Group(f"{endpoints.SERVICE_NAME}-kubernetes", alerts())],
    )
