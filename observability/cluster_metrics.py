"""The list of metric names the service does not expose (observability/cluster-metrics.yaml), as lookups.

Rules and dashboards write such a name only through :func:`metric`, so a name that is not in the
list — a typo, or a metric an exporter renamed — fails at generation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

LIST_FILE = Path(__file__).resolve().parent / "cluster-metrics.yaml"


@dataclass(frozen=True)
class Exporter:
    name: str
    cluster_only: bool
    version: str
    source: str
    metrics: frozenset[str]


@cache
def exporters() -> dict[str, Exporter]:
    data: dict[str, Any] = yaml.safe_load(LIST_FILE.read_text())
    return {
        name: Exporter(
            name=name,
            cluster_only=bool(item["cluster_only"]),
            version=str(item["version"]),
            source=str(item["source"]),
            metrics=frozenset(item["metrics"]),
        )
        for name, item in data["exporters"].items()
    }


def metric(exporter: str, name: str) -> str:
    """``name``, after checking the list says ``exporter`` exposes it."""
    found = exporters()[exporter]
    if name not in found.metrics:
        raise KeyError(f"{name} is not listed for {exporter} in {LIST_FILE.name}")
    return name


def cluster_only() -> frozenset[str]:
    """Every listed name that only exists in the cluster."""
    return frozenset(m for e in exporters().values() if e.cluster_only for m in e.metrics)


def listed() -> frozenset[str]:
    return frozenset(m for e in exporters().values() for m in e.metrics)
