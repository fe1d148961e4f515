"""Load and validate an SLO file; every reference into app/ is resolved here and refused if it is wrong."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from app import endpoints
from app import metric_names as names
from observability import promql
from observability.paths import SLO_DIR
from observability.rules import SEVERITIES, Severity

# Only these modules may be referenced from an SLO file: the service's network and metric contracts.
_REFERABLE_MODULES = ("app.endpoints", "app.metric_names")


class SLOError(ValueError):
    """The SLO file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class AvailabilitySLI:
    """Bad events: requests whose status matches ``bad_status``; all events: every selected request."""

    metric: names.Metric
    bad_status: str


@dataclass(frozen=True)
class LatencySLI:
    """Bad events: requests slower than ``threshold_seconds`` (an exact histogram bucket bound)."""

    metric: names.Metric
    threshold_seconds: float


@dataclass(frozen=True)
class SLO:
    name: str
    title: str
    description: str
    objective_percent: Decimal
    sli: AvailabilitySLI | LatencySLI

    @property
    def objective(self) -> Decimal:
        """The objective as a ratio, e.g. 0.999."""
        return self.objective_percent / 100

    @property
    def error_budget(self) -> Decimal:
        """The share of requests allowed to be bad, e.g. 0.001."""
        return 1 - self.objective


@dataclass(frozen=True)
class BurnRateAlert:
    name: str
    severity: Severity
    burn_rate: Decimal
    long_window: str
    short_window: str


@dataclass(frozen=True)
class ServiceSLOs:
    """One service's SLO file, resolved."""

    path: Path
    service: str
    period: str
    excluded_routes: tuple[str, ...]
    slos: tuple[SLO, ...]
    burn_rate_alerts: tuple[BurnRateAlert, ...]

    @property
    def alert_windows(self) -> tuple[str, ...]:
        """Every window a burn-rate alert reads, shortest first."""
        windows = {w for a in self.burn_rate_alerts for w in (a.long_window, a.short_window)}
        return tuple(sorted(windows, key=promql.seconds))

    @property
    def windows(self) -> tuple[str, ...]:
        """Every window an SLI is recorded over: the alert windows and the period."""
        return (*self.alert_windows, self.period)

    @property
    def base_window(self) -> str:
        """The shortest window; the period's SLI is averaged from it (as Sloth does)."""
        return self.alert_windows[0]

    def slo(self, name: str) -> SLO:
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(name)


def camel(text: str) -> str:
    """``taskboard`` → ``Taskboard``, ``api-latency`` → ``ApiLatency``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_\s]+", text) if part)


def resolve(reference: str, where: str) -> Any:
    """The value named ``module.ATTRIBUTE`` in one of the referable app modules."""
    module_name, _, attribute = reference.rpartition(".")
    if module_name not in _REFERABLE_MODULES:
        raise SLOError(f"{where}: {reference!r} must name a value in {' or '.join(_REFERABLE_MODULES)}")
    module = importlib.import_module(module_name)
    if not hasattr(module, attribute):
        raise SLOError(f"{where}: {module_name} has no {attribute}")
    return getattr(module, attribute)


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise SLOError(f"{where}: missing key {key!r}")
    return data[key]


def _excluded_routes(items: list[str], where: str) -> tuple[str, ...]:
    routes: list[str] = []
    for reference in items:
        value = resolve(reference, where)
        values = (value,) if isinstance(value, str) else tuple(value)
        if not all(isinstance(v, str) for v in values):
            raise SLOError(f"{where}: {reference} is not a route or a tuple of routes")
        routes.extend(values)
    return tuple(dict.fromkeys(routes))


def _sli(data: dict[str, Any], where: str) -> AvailabilitySLI | LatencySLI:
    metric = resolve(_require(data, "metric", where), f"{where}.metric")
    if not isinstance(metric, names.Metric):
        raise SLOError(f"{where}.metric: {data['metric']} is not an app.metric_names.Metric")
    if "bad_status" in data:
        if metric.kind != "counter" or names.STATUS not in metric.labels:
            raise SLOError(f"{where}: an availability SLI needs a counter with a {names.STATUS!r} label")
        re.compile(str(data["bad_status"]))
        return AvailabilitySLI(metric, str(data["bad_status"]))
    if "threshold_seconds" in data:
        threshold = float(data["threshold_seconds"])
        if metric.kind != "histogram":
            raise SLOError(f"{where}: a latency SLI needs a histogram")
        if threshold not in metric.buckets:
            raise SLOError(
                f"{where}.threshold_seconds: {threshold} is not a bucket bound of {metric.name} "
                f"({', '.join(map(str, metric.buckets))}); the SLI must be an exact bucket count"
            )
        return LatencySLI(metric, threshold)
    raise SLOError(f"{where}: an SLI needs bad_status (availability) or threshold_seconds (latency)")


def load(path: Path) -> ServiceSLOs:
    """Read ``path`` and resolve every reference; raise :class:`SLOError` naming the first problem."""
    where = path.name
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    service = str(_require(data, "service", where))
    if service != endpoints.SERVICE_NAME:
        raise SLOError(f"{where}: service {service!r} is not app.endpoints.SERVICE_NAME ({endpoints.SERVICE_NAME!r})")
    period = str(_require(data, "period", where))
    promql.seconds(period)
    slos = []
    for i, item in enumerate(_require(data, "slos", where)):
        at = f"{where}: slos[{i}]"
        objective = Decimal(str(_require(item, "objective", at)))
        if not Decimal(0) < objective < Decimal(100):
            raise SLOError(f"{at}.objective: a percentage strictly between 0 and 100, got {objective}")
        slos.append(
            SLO(
                name=str(_require(item, "name", at)),
                title=str(_require(item, "title", at)),
                description=str(_require(item, "description", at)),
                objective_percent=objective,
                sli=_sli(_require(item, "sli", at), f"{at}.sli"),
            )
        )
    if len({s.name for s in slos}) != len(slos):
        raise SLOError(f"{where}: SLO names must be unique")
    alerts = []
    for i, item in enumerate(_require(data, "burn_rate_alerts", where)):
        at = f"{where}: burn_rate_alerts[{i}]"
        severity = str(_require(item, "severity", at))
        if severity not in SEVERITIES:
            raise SLOError(f"{at}.severity: one of {SEVERITIES}, got {severity!r}")
        long_window, short_window = str(_require(item, "long_window", at)), str(_require(item, "short_window", at))
        if promql.seconds(short_window) >= promql.seconds(long_window):
            raise SLOError(f"{at}: short_window must be shorter than long_window")
        alerts.append(
            BurnRateAlert(
                name=str(_require(item, "name", at)),
                severity=severity,
                burn_rate=Decimal(str(_require(item, "burn_rate", at))),
                long_window=long_window,
                short_window=short_window,
            )
        )
    return ServiceSLOs(
        path=path,
        service=service,
        period=period,
        excluded_routes=_excluded_routes(_require(data, "excluded_routes", where), f"{where}: excluded_routes"),
        slos=tuple(slos),
        burn_rate_alerts=tuple(alerts),
    )


def load_all() -> list[ServiceSLOs]:
    """Every SLO file in observability/slo/."""
    return [load(path) for path in sorted(SLO_DIR.glob("*.yaml"))]
