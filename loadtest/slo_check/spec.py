"""What the gate checks: the phases of the drills file, the SLOs, and the alert rules the phases name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loadtest.slo_check import NotMeasured
from observability.labels import ALERTNAME, SEVERITY
from observability.paths import RULES_DIR, SLO_FILE
from observability.slo import spec as slo_spec

DRILLS_FILE = Path(__file__).resolve().parent.parent / "drills.yaml"
STARTS = ("stop-database", "start-database", "inject", "clear-faults")
RECOVERIES = ("availability", "latency")
STATES = ("firing", "silent")


@dataclass(frozen=True)
class Expectation:
    alert: str | None
    severity: str | None
    state: str  # "firing" or "silent"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (self.alert is None or labels.get(ALERTNAME) == self.alert) and (
            self.severity is None or labels.get(SEVERITY) == self.severity
        )

    def describe(self) -> str:
        who = self.alert or "any alert"
        return f"{who}{f' ({self.severity})' if self.severity else ''} {self.state}"


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    start: str | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    gate: bool = False
    expect: tuple[Expectation, ...] = ()
    recover: str | None = None

    @property
    def firing(self) -> list[Expectation]:
        return [e for e in self.expect if e.state == "firing"]

    @property
    def silent(self) -> list[Expectation]:
        return [e for e in self.expect if e.state == "silent"]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise NotMeasured(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise NotMeasured(f"{path.name}: not valid YAML ({exc})") from None


def load_drills(path: Path = DRILLS_FILE) -> list[Phase]:
    """The phases, validated: a mistake names the phase and the key."""
    data = _read_yaml(path)
    items = data.get("phases") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise NotMeasured(f"{path.name}: phases must be a list")
    phases = [_phase(item, index, path.name) for index, item in enumerate(items)]
    if sum(p.gate for p in phases) != 1:
        raise NotMeasured(f"{path.name}: exactly one phase must be the gate")
    return phases


def _phase(item: Any, index: int, file: str) -> Phase:
    if not isinstance(item, dict):
        raise NotMeasured(f"{file}: phase {index}: must be a mapping")
    where = f"{file}: phase {item.get('name', index)}"
    if not item.get("name"):
        raise NotMeasured(f"{where}: name is required")
    if item.get("start") not in (None, *STARTS):
        raise NotMeasured(f"{where}: start must be one of {sorted(STARTS)}")
    if item.get("recover") not in (None, *RECOVERIES):
        raise NotMeasured(f"{where}: recover must be availability or latency")
    try:
        seconds = float(item["seconds"])
    except (KeyError, TypeError, ValueError):
        raise NotMeasured(f"{where}: seconds must be a number") from None
    return Phase(
        name=str(item["name"]),
        seconds=seconds,
        start=item.get("start"),
        faults=item.get("faults", {}),
        gate=bool(item.get("gate", False)),
        expect=tuple(_expectation(raw, where) for raw in item.get("expect", [])),
        recover=item.get("recover"),
    )


def _expectation(raw: Any, where: str) -> Expectation:
    if not isinstance(raw, dict) or raw.get("state") not in STATES:
        raise NotMeasured(f"{where}: expect.state must be firing or silent")
    if not raw.get("alert") and not raw.get("severity"):
        raise NotMeasured(f"{where}: an expectation needs an alert or a severity")
    return Expectation(raw.get("alert"), raw.get("severity"), raw["state"])


def load_slos(path: Path = SLO_FILE) -> slo_spec.ServiceSLOs:
    """The objectives the gate phase is held to: the file the alert rules are generated from."""
    try:
        return slo_spec.load(path)
    except slo_spec.SLOError as exc:
        raise NotMeasured(str(exc)) from None  # names the file and the key already
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise NotMeasured(f"{path.name}: {exc}") from None


def rule_index(rules_dir: Path = RULES_DIR) -> dict[str, dict[str, Any]]:
    """Every alerting rule in the generated and hand-written rule files, by name."""
    alerts: dict[str, dict[str, Any]] = {}
    for path in sorted(rules_dir.glob("*.y*ml")):
        data = _read_yaml(path)
        try:
            for group in data.get("groups", []):
                for rule in group.get("rules", []):
                    if "alert" in rule:
                        alerts[rule["alert"]] = rule
        except (AttributeError, TypeError):
            raise NotMeasured(f"{path.name}: not a Prometheus rule file") from None
    return alerts


def require_known_alerts(phases: list[Phase], rules: Mapping[str, Any], file: str) -> None:
    """Refuse a drill that expects an alert no rule file defines: it could never fire."""
    for phase in phases:
        for expectation in phase.expect:
            if expectation.alert and expectation.alert not in rules:
                raise NotMeasured(f"{file}: phase {phase.name} expects unknown alert {expectation.alert}")
