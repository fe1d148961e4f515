"""Label names Prometheus attaches to targets and that rules, routing and dashboards select on.

The service's own labels (route, status, …) live in app.metric_names; these are the target labels
that kube-prometheus-stack's ServiceMonitors and the local stack's scrape config add.
"""

from __future__ import annotations

JOB = "job"  # = app.endpoints.SERVICE_NAME for the service's targets
NAMESPACE = "namespace"  # Kubernetes namespace ("local" on the local stack)
INSTANCE = "instance"
POD = "pod"
# Set per cluster by relabelling or as an external label; absent on the local stack's own series, so
# dashboards match it with a regex whose "All" value also matches the empty label.
ENVIRONMENT = "environment"

# Labels the SLO rules put on their series (Sloth's names, so Sloth-aware dashboards work too).
SLO_ID = "sloth_id"
SLO_SERVICE = "sloth_service"
SLO_NAME = "sloth_slo"
SLO_WINDOW = "sloth_window"

SEVERITY = "severity"
ALERTNAME = "alertname"
