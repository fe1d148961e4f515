"""reports/slo/: summary.json (everything, machine-readable) and summary.md (the tables CI shows)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from loadtest.slo_check import NotMeasured
from loadtest.slo_check.drills import RECOVERY_WINDOW, PhaseResult
from loadtest.slo_check.measure import SLIs
from loadtest.slo_check.stack import Target
from observability.paths import ROOT, SLO_FILE
from observability.slo import spec as slo_spec
from observability.slo_rules import alert_name


def summary(
    *,
    target: Target,
    service: slo_spec.ServiceSLOs,
    users: int,
    load_window: tuple[float, float],
    results: list[PhaseResult],
    gate: PhaseResult,
    gate_slis: SLIs,
    verdicts: list[dict[str, Any]],
    passed: bool,
) -> dict[str, Any]:
    """What summary.json holds (and summary.md shows); `charts` and `total_seconds` are added after."""
    start, end = load_window
    return {
        "passed": passed,
        "target": target.app_url,
        "reused_stack": target.reused,
        "users": users,
        "start": start,
        "end": end,
        "duration_seconds": round(end - start, 1),
        "scrape_interval": target.scrape_interval,
        "evaluation_interval": target.evaluation_interval,
        "slo_file": str(SLO_FILE.relative_to(ROOT)),
        "gate": {
            "phase": gate.name,
            "seconds": round(gate.end - gate.start, 1),
            "slis": asdict(gate_slis),
            "verdicts": verdicts,
        },
        "phases": [{**asdict(r), "passed": r.passed} for r in results],
        "alerts": {
            alert_name(service, slo, alert): alert.severity
            for slo in service.slos
            for alert in service.burn_rate_alerts
        },
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.3f} %"


def markdown(report: Mapping[str, Any]) -> str:
    gate = report["gate"]
    slis = gate["slis"]
    ok = "✅" if report["passed"] else "❌"
    lines = [
        f"# SLO check {ok} {'passed' if report['passed'] else 'FAILED'}",
        "",
        f"{report['users']} Locust users against {report['target']} for {report['duration_seconds']:.0f} s; "
        f"the gate is the **{gate['phase']}** phase ({gate['seconds']:.0f} s, {slis['requests']:.0f} requests, "
        f"{slis['throughput_rps']:.1f} req/s).",
        "",
        "| SLO | objective | measured | result |",
        "|---|---:|---:|:---:|",
    ]
    for row in gate["verdicts"]:
        lines.append(
            f"| {row['title']} | {_percent(row['objective'])} | {_percent(row['measured'])} | "
            f"{'pass' if row['passed'] else '**FAIL**'} |"
        )
    lines += [
        "",
        f"Latency in the gate phase: p50 {slis['p50_ms']} ms, p95 {slis['p95_ms']} ms, p99 {slis['p99_ms']} ms; "
        f"{slis['errors']:.0f} server errors.",
        "",
        "## Drills",
        "",
        "| phase | started (UTC) | expectation | result | detail |",
        "|---|---|---|:---:|---|",
    ]
    for phase in report["phases"]:
        lines += _drill_rows(phase)
    lines += ["", "Charts: throughput.png, errors.png, latency.png. Locust: locust.html, locust_stats.csv."]
    return "\n".join(lines) + "\n"


def _drill_rows(phase: Mapping[str, Any]) -> list[str]:
    started = time.strftime("%H:%M:%S", time.gmtime(phase["start"]))
    rows = list(phase["expectations"])
    if phase["recovered"] is not None:
        rows.append(
            {
                "expectation": f"recovers ({RECOVERY_WINDOW:.0f} s clean)",
                "passed": phase["recovered"],
                "detail": f"by {phase['recovery_seconds']} s after the start"
                if phase["recovered"]
                else "did not recover",
            }
        )
    if not rows:
        rows = [{"expectation": "—", "passed": True, "detail": ""}]
    lines = []
    for row in rows:
        detail = row["detail"]
        if row.get("bound_seconds") is not None:
            detail += f" (bound {row['bound_seconds']:.0f} s)"
        if row.get("receiver"):
            detail += f", delivered to {row['receiver']}"
        lines.append(
            f"| {phase['name']} | {started} | {row['expectation']} | {'pass' if row['passed'] else '**FAIL**'} "
            f"| {detail} |"
        )
    return lines


def write(report: Mapping[str, Any], out: Path, step_summary: Path | None) -> str:
    """summary.json and summary.md in ``out``, the Markdown appended to the CI job summary; the Markdown."""
    text = markdown(report)
    try:
        (out / "summary.json").write_text(json.dumps(report, indent=2, default=_jsonable))
        (out / "summary.md").write_text(text)
        if step_summary is not None:
            with step_summary.open("a") as job_summary:
                job_summary.write(text)
    except OSError as exc:
        raise NotMeasured(f"cannot write the report: {exc}") from None
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
