"""Dashboards' generated files, dashboards/generated/<uid>.json from dashboards/src/: one part of
``make generate`` (observability/generated.py composes it). The output depends only on the sources.
"""

from __future__ import annotations

from pathlib import Path

from dashboards.builder import Dashboard, render
from dashboards.src import database, kubernetes, loadtest, service_overview, slo

OUT_DIR = Path(__file__).resolve().parent / "generated"


def dashboards() -> list[Dashboard]:
    return [
        service_overview.dashboard(),
        slo.dashboard(),
        database.dashboard(),
        kubernetes.dashboard(),
        loadtest.dashboard(),
    ]


def outputs() -> dict[Path, str]:
    """Every dashboard file: its path and content."""
    return {OUT_DIR / f"{d.uid}.json": render(d) for d in dashboards()}
