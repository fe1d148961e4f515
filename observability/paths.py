"""Where observability's files live: the one definition every folder imports (the gate, the local
stack, the generators), so that moving a file is one change here.
"""

from __future__ import annotations

from pathlib import Path

from app.endpoints import SERVICE_NAME

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "observability"
# The SLOs, one YAML file per service: the source of rules, alerts, runbooks, dashboards and the gate.
SLO_DIR = PACKAGE / "slo"
SLO_FILE = SLO_DIR / f"{SERVICE_NAME}.yaml"  # this repository's one service
# Generated Prometheus rule files (recording rules and alerts), loaded by every Prometheus we run.
RULES_DIR = PACKAGE / "rules"
# Alertmanager's routing as code: the cluster's, the local stack's (made offline) and the gate's.
ALERTMANAGER_ROUTING = PACKAGE / "alertmanager" / "alertmanager.yml"
