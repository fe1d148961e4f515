"""Alertmanager as the drills read it: the alerts it holds, and the receiver the routing gives one."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from loadtest.slo_check import NotMeasured, api
from observability.paths import ALERTMANAGER_ROUTING

WHO = "Alertmanager"


@dataclass(frozen=True)
class Held:
    """An alert Alertmanager holds, and the receivers it went to."""

    labels: dict[str, str]
    receivers: frozenset[str]


class Alertmanager:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def alerts(self) -> list[Held]:
        body = api.get_json(f"{self.url}/api/v2/alerts", who=WHO, session=self.session)
        try:
            return [Held(dict(a["labels"]), frozenset(r["name"] for r in a.get("receivers", []))) for a in body]
        except (KeyError, TypeError, AttributeError):
            raise NotMeasured(f"{WHO} answered /api/v2/alerts in a shape it does not document") from None


def routed_receiver(labels: Mapping[str, str], config: Path = ALERTMANAGER_ROUTING) -> str:
    """The receiver the repository's routing gives an alert with ``labels`` (amtool decides)."""
    amtool = shutil.which("amtool")
    if amtool is None:
        raise NotMeasured("amtool not found: install the Debian package prometheus-alertmanager")
    result = subprocess.run(  # noqa: S603
        [amtool, "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True,
        text=True,
        check=False,
    )
    receiver = result.stdout.strip()
    if result.returncode != 0 or not receiver:
        raise NotMeasured(
            f"amtool config routes test {config.name} exited {result.returncode}: {result.stderr.strip()}"
        )
    return receiver
