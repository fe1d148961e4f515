"""The gate's steps in order.

1. Read the SLO file (observability/slo/taskboard.yaml, the file the alert rules are generated from),
   the drills file and the alert rules the drills name.
2. Use the stack `make run` is serving, or start one of its own (fresh database, free ports) with
   short scrape and evaluation intervals, the generated rules and the repository's routing.
3. Run Locust headless for the whole check, and walk the phases of loadtest/drills.yaml: steady load
   (the gate), a database outage, a latency fault, each followed by its recovery. Every drill's alerts
   must fire in Prometheus within a bound from scrape + evaluation interval + `for:`, and reach
   Alertmanager on the routed receiver.
4. Compute the SLIs of every phase from Prometheus over exactly its window (counter deltas, not rate
   extrapolation) and hold the gate phase's to the objectives.
5. Write reports/slo/: summary.md and summary.json, Locust's CSV and HTML, PNG charts with the drills
   shaded.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from loadtest.slo_check import NotMeasured, charts, load, report, spec, stack, verdict
from loadtest.slo_check.alertmanager import Alertmanager
from loadtest.slo_check.drills import Drill, PhaseResult
from loadtest.slo_check.measure import Window, measure
from loadtest.slo_check.prometheus import Prometheus
from loadtest.slo_check.settings import Settings
from observability import promql


def run(settings: Settings) -> int:
    """0 when every SLO and every drill expectation held, 1 when one did not; NotMeasured otherwise."""
    started = time.time()
    service = spec.load_slos()
    phases = _phases(settings)
    rules = spec.rule_index()
    spec.require_known_alerts(phases, rules, settings.drills_file.name)
    _empty_folder(settings.out)
    with stack.target(settings.faults, settings.state_dir, settings.run_state_dir) as target:
        prom = Prometheus(target.prometheus_url)
        drill = Drill(target, service, rules, prom, Alertmanager(target.alertmanager_url))
        results: list[PhaseResult] = []
        with load.locust(target.app_url, settings.out, settings.users, settings.spawn_rate) as locust:
            load_started = time.time()
            for phase in phases:
                print(f"slo-check: phase {phase.name} ({phase.start or 'load only'})", file=sys.stderr, flush=True)
                results.append(drill.run(phase))
                locust.require_running(f"during the {phase.name} phase")
            load_ended = time.time()
        # Let the last scrape land before measuring.
        time.sleep(2 * promql.seconds(target.scrape_interval))
        for result in results:
            result.slis = asdict(measure(prom, service, Window(result.name, result.start, result.end)))
        gate = next(r for r, p in zip(results, phases, strict=True) if p.gate)
        gate_slis = measure(prom, service, Window(gate.name, gate.start, gate.end))
        verdicts = verdict.verdicts(service, gate_slis)
        summary = report.summary(
            target=target,
            service=service,
            users=settings.users,
            load_window=(load_started, load_ended),
            results=results,
            gate=gate,
            gate_slis=gate_slis,
            verdicts=verdicts,
            passed=verdict.passed(verdicts, results),
        )
        summary["charts"] = charts.draw(prom, service, summary, settings.out)
    summary["total_seconds"] = round(time.time() - started, 1)
    print(report.write(summary, settings.out, settings.step_summary))
    print(f"reports in {settings.out} ({summary['total_seconds']:.0f} s in all)")
    return 0 if summary["passed"] else 1


def _phases(settings: Settings) -> list[spec.Phase]:
    """The drills file's phases, narrowed to the gate phase and its length changed as the flags say."""
    phases = spec.load_drills(settings.drills_file)
    if settings.no_drills:
        phases = [p for p in phases if p.gate]
    if settings.steady is not None:
        phases = [dataclasses.replace(p, seconds=settings.steady) if p.gate else p for p in phases]
    return phases


def _empty_folder(out: Path) -> None:
    try:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
    except OSError as exc:
        raise NotMeasured(f"{out}: cannot empty the report folder ({exc.strerror})") from None
