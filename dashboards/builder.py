"""The one place that turns dashboard specs into grafanalib objects, and fills what grafanalib 0.7.1 lacks.

grafanalib (pinned at 0.7.1, frozen since 2024) writes classic dashboard JSON but has no field for
exemplars or for field-config data links, sets no datasource on targets by default (panels then come
out empty in Grafana 10+), and defaults to schema version 12. Dashboards under dashboards/src/ describe
panels with the small typed specs below and never touch grafanalib directly, so every such gap is
closed here once:

- every panel and every target names its datasource by the fixed UID of observability/datasources.py;
- a query may ask for exemplars (``exemplar: true`` on the target; Prometheus's exemplar link opens the
  trace in Jaeger);
- a panel may carry data links (``fieldConfig.defaults.links``), e.g. to its route's logs in OpenSearch;
- a panel over metrics that exist only in the cluster says so (``cluster_only``), in its description
  for people and in the spec for the proof test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote

import grafanalib.core as g  # type: ignore[import-untyped]  # grafanalib ships no type information

from app import metric_names as names
from observability import cluster_metrics, labels, promql
from observability.datasources import OPENSEARCH, PROMETHEUS
from observability.links import runbook_base_url

SCHEMA_VERSION = 39  # classic JSON as Grafana 10/11 writes it; Grafana 12+ still provisions it
DASHBOARD_TAG = "taskboard"
GRID_WIDTH = 24

# Template variables every dashboard has. `environment` is a label set per cluster by relabelling or as
# an external label; where a series lacks it (the local stack), "All" (.*) still matches.
VAR_ENVIRONMENT = "environment"
VAR_NAMESPACE = "namespace"
VAR_SERVICE = "service"
ALL = ".*"

Unit = Literal[
    "short", "reqps", "ops", "percentunit", "s", "ms", "bytes", "decbytes", "percent", "none", "cores", "string"
]
Kind = Literal["timeseries", "stat", "table"]


@dataclass(frozen=True)
class Query:
    """One PromQL target."""

    expr: str
    legend: str = ""
    instant: bool = False
    exemplar: bool = False
    table: bool = False


@dataclass(frozen=True)
class Link:
    """A data link shown on a panel's series (Grafana interpolates ``${...}``)."""

    title: str
    url: str


@dataclass(frozen=True)
class Panel:
    """A panel spec. ``cluster_only`` names the exporter whose metrics it reads when they exist only in
    the cluster; such a panel cannot show data on the local stack."""

    title: str
    queries: Sequence[Query]
    kind: Kind = "timeseries"
    unit: Unit = "short"
    description: str = ""
    width: int = 8
    height: int = 8
    links: Sequence[Link] = ()
    cluster_only: str | None = None
    stacked: bool = False
    thresholds: Sequence[tuple[str, float | None]] = ()  # (color, from value); None for the base step
    min: int | None = None
    max: int | None = None
    no_value: str | None = None
    id: int = 0  # set by Dashboard.build

    def metric_names(self) -> set[str]:
        return {name for q in self.queries for name in promql.metric_names(q.expr)}


@dataclass(frozen=True)
class Row:
    title: str
    panels: Sequence[Panel]


@dataclass
class Dashboard:
    """A dashboard spec; :meth:`build` lays it out and keeps the numbered panel specs in ``panels``
    (ids as in the JSON), which the proof test uses to find a panel's ``cluster_only`` mark."""

    uid: str
    title: str
    description: str
    rows: Sequence[Row]
    time_from: str = "now-6h"
    refresh: str = "30s"
    tags: Sequence[str] = ()
    panels: list[Panel] = field(default_factory=list, init=False)

    def build(self) -> dict[str, Any]:
        """The classic dashboard JSON (as a dict), panels numbered in order, laid out row by row."""
        self._check()
        grafana_panels: list[Any] = []
        self.panels = []
        y, next_id = 0, 1
        for row in self.rows:
            grafana_panels.append(
                g.RowPanel(title=row.title, id=next_id, gridPos=g.GridPos(h=1, w=GRID_WIDTH, x=0, y=y))
            )
            next_id += 1
            y += 1
            x, line_height = 0, 0
            for spec in row.panels:
                if x + spec.width > GRID_WIDTH:
                    x, y, line_height = 0, y + line_height, 0
                numbered = replace(spec, id=next_id)
                self.panels.append(numbered)
                grafana_panels.append(_panel(numbered, g.GridPos(h=spec.height, w=spec.width, x=x, y=y)))
                next_id += 1
                x += spec.width
                line_height = max(line_height, spec.height)
            y += line_height
        dashboard = g.Dashboard(
            title=self.title,
            uid=self.uid,
            description=self.description,
            tags=[DASHBOARD_TAG, *self.tags],
            timezone="utc",
            refresh=self.refresh,
            time=g.Time(self.time_from, "now"),
            schemaVersion=SCHEMA_VERSION,
            graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
            editable=False,
            templating=g.Templating(list=_variables()),
            links=[
                g.DashboardLink(title="Task board dashboards", tags=[DASHBOARD_TAG], asDropdown=True, includeVars=True),
                g.DashboardLink(
                    title="Runbooks",
                    type="link",
                    uri=f"{runbook_base_url()}/README.md",
                    targetBlank=True,
                    keepTime=False,
                ),
            ],
            panels=grafana_panels,
        )
        data: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), default=_grafanalib_json))
        # Grafana assigns ids and versions on import; a provisioned file must not pin them.
        data.pop("id", None)
        data["version"] = 1
        return data

    def _check(self) -> None:
        for row in self.rows:
            for spec in row.panels:
                used = spec.metric_names()
                only = used & cluster_metrics.cluster_only()
                if spec.cluster_only is None and only:
                    raise ValueError(
                        f"{self.uid}/{spec.title}: reads cluster-only {sorted(only)}; mark it cluster_only"
                    )
                if spec.cluster_only is not None and not only:
                    raise ValueError(f"{self.uid}/{spec.title}: marked cluster_only but reads no cluster-only metric")


def render(dashboard: Dashboard) -> str:
    """The file content of dashboards/generated/<uid>.json (stable: sorted keys, 2-space indent)."""
    return json.dumps(dashboard.build(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# -- selectors every dashboard shares -------------------------------------------------------------


def service_matchers() -> str:
    """Matchers for the service's own series under the dashboard's variables."""
    return (
        f'{labels.JOB}=~"${VAR_SERVICE}",{labels.NAMESPACE}=~"${VAR_NAMESPACE}",'
        f'{labels.ENVIRONMENT}=~"${VAR_ENVIRONMENT}"'
    )


def sel(metric: str, *extra: str) -> str:
    """``metric{<service matchers>,<extra matchers>}``."""
    return f"{metric}{{{','.join((service_matchers(), *extra))}}}"


def namespace_sel(metric: str, *extra: str) -> str:
    """For series that are not the service's own (exporters): the namespace variable only."""
    namespace = f'{labels.NAMESPACE}=~"${VAR_NAMESPACE}"'
    return f"{metric}{{{','.join((namespace, *extra))}}}"


# -- links ---------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{[^}]+\}")


def explore_logs(title: str, lucene: str) -> Link:
    """A link to Grafana Explore on the OpenSearch logs, with a Lucene query (may hold ``${...}``)."""
    pane = {
        "logs": {
            "datasource": OPENSEARCH.uid,
            "queries": [
                {
                    "refId": "A",
                    "datasource": OPENSEARCH.ref(),
                    "queryType": "lucene",
                    "luceneQueryType": "Logs",
                    "query": lucene,
                    "metrics": [{"id": "1", "type": "logs"}],
                    "bucketAggs": [],
                    "timeField": "@timestamp",
                }
            ],
            "range": {"from": "${__from}", "to": "${__to}"},
        }
    }
    text = json.dumps(pane, separators=(",", ":"))
    # Percent-encode the JSON, but leave Grafana's ${...} variables for it to interpolate.
    parts, last = [], 0
    for match in _VARIABLE.finditer(text):
        parts += [quote(text[last : match.start()], safe=""), match.group(0)]
        last = match.end()
    parts.append(quote(text[last:], safe=""))
    return Link(title, "/explore?schemaVersion=1&orgId=1&panes=" + "".join(parts))


def logs_for_route() -> Link:
    return explore_logs("Logs of this route", f'{names.ROUTE}:"${{__field.labels.{names.ROUTE}:percentencode}}"')


# -- grafanalib --------------------------------------------------------------------------------


class _Target(g.Target):  # type: ignore[misc]  # grafanalib is untyped
    """A Prometheus target with the fields grafanalib 0.7.1 does not write."""

    def __init__(self, query: Query, ref_id: str) -> None:
        super().__init__(
            expr=query.expr,
            legendFormat=query.legend,
            refId=ref_id,
            instant=query.instant,
            format=g.TABLE_TARGET_FORMAT if query.table else g.TIME_SERIES_TARGET_FORMAT,
            datasource=PROMETHEUS.ref(),
            intervalFactor=1,
        )
        self._exemplar = query.exemplar

    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().to_json_data()
        data["exemplar"] = self._exemplar
        data["range"] = not self.instant
        data["editorMode"] = "code"
        for unused in ("target", "metric", "step", "query"):
            data.pop(unused, None)
        return data


def _grafanalib_json(obj: Any) -> Any:
    """grafanalib's public serialisation protocol: every object it defines has ``to_json_data()``."""
    to_json_data = getattr(obj, "to_json_data", None)
    if to_json_data is None:
        raise TypeError(f"{type(obj).__name__} is not a grafanalib object")
    return to_json_data()


def _targets(queries: Sequence[Query]) -> list[_Target]:
    return [_Target(q, chr(ord("A") + i)) for i, q in enumerate(queries)]


def _steps(spec: Panel) -> list[dict[str, Any]]:
    steps = spec.thresholds or (("green", None),)
    return [{"color": color, "value": value} for color, value in steps]


def _field_extras(spec: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"thresholds": {"mode": "absolute", "steps": _steps(spec)}}
    if spec.links:
        defaults["links"] = [{"title": link.title, "url": link.url, "targetBlank": True} for link in spec.links]
    if spec.no_value is not None:
        defaults["noValue"] = spec.no_value
    return {"fieldConfig": {"defaults": defaults}}


def _description(spec: Panel) -> str:
    if spec.cluster_only is None:
        return spec.description
    note = f"Cluster only: needs {spec.cluster_only} (no data on the local stack)."
    return f"{spec.description} {note}".strip()


def _panel(spec: Panel, pos: Any) -> Any:
    common: dict[str, Any] = {
        "title": spec.title,
        "id": spec.id,
        "gridPos": pos,
        "dataSource": PROMETHEUS.ref(),
        "targets": _targets(spec.queries),
        "description": _description(spec),
        "extraJson": _field_extras(spec),
        "maxDataPoints": None,  # let Grafana match the panel width
    }
    if spec.kind == "timeseries":
        return g.TimeSeries(
            unit=spec.unit,
            legendDisplayMode="table",
            legendPlacement="bottom",
            legendCalcs=["mean", "max", "lastNotNull"],
            tooltipMode="multi",
            stacking={"mode": "normal", "group": "A"} if spec.stacked else {"mode": "none"},
            fillOpacity=20 if spec.stacked else 5,
            valueMin=spec.min,
            valueMax=spec.max,
            spanNulls=True,
            **common,
        )
    if spec.kind == "stat":
        return g.Stat(format=spec.unit, reduceCalc="lastNotNull", graphMode="area", colorMode="value", **common)
    return g.Table(unit=spec.unit, filterable=True, **common)


def _variables() -> list[Any]:
    build_info = names.BUILD_INFO.name

    def variable(name: str, label: str, query: str, *, include_all: bool) -> Any:
        return g.Template(
            name=name,
            label=label,
            query=query,
            dataSource=PROMETHEUS.ref(),
            includeAll=include_all,
            allValue=ALL if include_all else None,
            default="$__all" if include_all else None,
            refresh=g.REFRESH_ON_TIME_RANGE_CHANGE,
            sort=g.SORT_ALPHA_ASC,
        )

    environment = f"label_values({build_info}, {labels.ENVIRONMENT})"
    namespace = f'label_values({build_info}{{{labels.ENVIRONMENT}=~"${VAR_ENVIRONMENT}"}}, {labels.NAMESPACE})'
    service = f'label_values({build_info}{{{labels.NAMESPACE}=~"${VAR_NAMESPACE}"}}, {labels.JOB})'
    return [
        variable(VAR_ENVIRONMENT, "Environment", environment, include_all=True),
        variable(VAR_NAMESPACE, "Namespace", namespace, include_all=False),
        variable(VAR_SERVICE, "Service", service, include_all=False),
    ]
