"""The verdict: each objective of the SLO file against the SLI measured in the gate phase."""

from __future__ import annotations

from typing import Any

from loadtest.slo_check.drills import PhaseResult
from loadtest.slo_check.measure import SLIs
from observability.slo import spec as slo_spec


def verdicts(service: slo_spec.ServiceSLOs, slis: SLIs) -> list[dict[str, Any]]:
    """One row per SLO; an SLI that could not be computed (no requests) fails its objective."""
    rows = []
    for slo in service.slos:
        measured = slis.availability if isinstance(slo.sli, slo_spec.AvailabilitySLI) else slis.latency_sli
        objective = float(slo.objective)
        rows.append(
            {
                "slo": slo.name,
                "title": slo.title,
                "objective": objective,
                "measured": measured,
                "passed": measured is not None and measured >= objective,
            }
        )
    return rows


def passed(rows: list[dict[str, Any]], phases: list[PhaseResult]) -> bool:
    """Every objective met and every drill phase passed: exit 0; anything else: exit 1."""
    return all(row["passed"] for row in rows) and all(phase.passed for phase in phases)
