"""Prometheus's HTTP API as the gate reads it: instant and range queries, and the alerts firing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from loadtest.slo_check import NotMeasured, api

WHO = "Prometheus"
T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant vector: the value of every series ``expr`` selects, now or ``at``."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._data("/api/v1/query", params, 10)
        return _parsed(
            "/api/v1/query", lambda: [Sample(dict(s["metric"]), float(s["value"][1])) for s in data["result"]]
        )

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"}
        data = self._data("/api/v1/query_range", params, 30)
        return _parsed(
            "/api/v1/query_range",
            lambda: [Series(dict(s["metric"]), [(float(t), float(v)) for t, v in s["values"]]) for s in data["result"]],
        )

    def firing(self) -> list[dict[str, str]]:
        """The labels of every alert firing now (not pending)."""
        data = self._data("/api/v1/alerts", {}, 10)
        return _parsed("/api/v1/alerts", lambda: [dict(a["labels"]) for a in data["alerts"] if a["state"] == "firing"])

    def _data(self, path: str, params: dict[str, str], timeout: float) -> Any:
        body = api.get_json(f"{self.url}{path}", who=WHO, session=self.session, params=params, timeout=timeout)
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise NotMeasured(f"{WHO} refused {path} {params.get('query', '')!r}: {error or 'not an API answer'}")
        return body.get("data")


def _parsed(path: str, parse: Callable[[], T]) -> T:
    """What ``parse`` reads from an answer; an answer of another shape is NotMeasured, not a crash."""
    try:
        return parse()
    except (KeyError, TypeError, ValueError, IndexError):
        raise NotMeasured(f"{WHO} answered {path} in a shape it does not document") from None
