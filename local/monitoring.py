"""The local stack's Prometheus and Alertmanager configurations, rendered from the repository's own.

Prometheus loads the generated rules of observability/rules/ and scrapes the service with the labels
the cluster's ServiceMonitor gives it; Alertmanager runs the repository's routing with every receiver
reduced to its name, so nothing is sent anywhere offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from app import endpoints
from observability import labels
from observability.paths import ALERTMANAGER_ROUTING, RULES_DIR

if TYPE_CHECKING:  # local.stack imports this module; the settings are only a parameter type here
    from local.stack import StackSettings


def rule_files() -> list[Path]:
    """Every rules file Prometheus must load, listed explicitly (a glob once dropped .yml files)."""
    if not RULES_DIR.is_dir():
        return []
    return sorted(p for p in RULES_DIR.iterdir() if p.suffix in {".yml", ".yaml"} and not p.name.startswith("."))


def prometheus_config(settings: StackSettings) -> dict[str, Any]:
    """The local Prometheus configuration: scrape the service and Prometheus itself, alert locally."""
    return {
        "global": {
            "scrape_interval": settings.scrape_interval,
            "evaluation_interval": settings.evaluation_interval,
            "external_labels": {labels.ENVIRONMENT: "local"},
        },
        "rule_files": [str(path) for path in rule_files()],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{settings.alertmanager_port}"]}]}]},
        "scrape_configs": [
            {
                "job_name": endpoints.SERVICE_NAME,
                "metrics_path": endpoints.METRICS,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{settings.app_port}"],
                        # What the cluster's ServiceMonitor gives each series, so the dashboards'
                        # environment and namespace variables work on the local stack too.
                        "labels": {
                            labels.NAMESPACE: "local",
                            "service": endpoints.SERVICE_NAME,
                            labels.ENVIRONMENT: "local",
                        },
                    }
                ],
            },
            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{settings.prometheus_port}"]}]},
            {"job_name": "alertmanager", "static_configs": [{"targets": [f"127.0.0.1:{settings.alertmanager_port}"]}]},
        ],
    }


# Global settings that are not about an integration (endpoints, credentials); the rest is dropped offline.
_OFFLINE_GLOBALS = frozenset({"resolve_timeout"})


def alertmanager_config(source: Path = ALERTMANAGER_ROUTING) -> dict[str, Any]:
    """The repository's routing (observability/alertmanager/alertmanager.yml), made to work offline.

    Same routing tree, grouping, inhibition and receiver names; no receiver has an integration, so
    nothing is sent anywhere and no secret file is needed. The web UI shows which receiver each
    alert reached.
    """
    return offline_routing(yaml.safe_load(source.read_text()))


def offline_routing(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every receiver reduced to its name and integration-only settings removed."""
    offline = {key: value for key, value in config.items() if key not in {"global", "receivers", "templates"}}
    offline["global"] = {k: v for k, v in config.get("global", {}).items() if k in _OFFLINE_GLOBALS}
    offline["receivers"] = [{"name": receiver["name"]} for receiver in config.get("receivers", [])]
    return offline
