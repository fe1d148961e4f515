"""The service's network contract: its name, port and fixed paths, imported by everything outside app/."""

from __future__ import annotations

# The Prometheus job, the OpenTelemetry service.name default, and the Kubernetes app name.
SERVICE_NAME = "taskboard"

HTTP_PORT = 8000

HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"
API_PREFIX = "/api/v1"
OPENAPI = f"{API_PREFIX}/openapi.json"
ADMIN_FAULTS = "/admin/faults"

REQUEST_ID_HEADER = "X-Request-ID"

# Paths that are not user traffic: kept out of traces and out of the SLOs.
OPERATIONAL_PATHS: tuple[str, ...] = (HEALTHZ, READYZ, METRICS)
