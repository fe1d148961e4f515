"""`make slo-check`: the SLO gate. Load the service, measure its SLIs, drill failures, assert the alerts.

Its modules are its steps, in the order `gate.run` takes them:

    settings      what to run: the flags and the SLO_CHECK_* variables
    spec          the drills file, the SLO file and the alert rules the drills name
    stack         the stack `make run` serves, or a fresh one of the gate's own
    load          Locust, headless, for the whole check
    drills        the phases: act, watch the alerts fire and reach their receiver, wait for recovery
    measure       SLIs over an exact window, from counter deltas
    verdict       objectives against what was measured
    charts        throughput, errors and latency over the run, drills shaded
    report        reports/slo/summary.md and summary.json
    prometheus, alertmanager, api   the HTTP APIs the steps read, every fault on the way turned into
                  NotMeasured

Exit codes (`__main__`): 0 every SLO and every drill passed; 1 an objective or a drill failed, which
is the change under test failing; 2 the gate could not measure (the stack did not start, Prometheus,
Alertmanager or Locust failed, a setting or the drills file is wrong), with one line on stderr saying
which.
"""


class NotMeasured(Exception):
    """The gate could not measure, as opposed to: it measured and an SLO or a drill failed (exit 2)."""
