"""The Locust user mix: request names are real route templates, and a short headless run is clean."""

from __future__ import annotations

import ast
import csv
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from app import create_app
from app.metrics import route_template
from loadtest.runner import LOCUSTFILE
from local.stack import Stack
from tests.conftest import ROOT, app_config


def _names_in_locustfile() -> set[str]:
    """Every string the locustfile passes as a request name (name=CONSTANT or name="...")."""
    tree = ast.parse(LOCUSTFILE.read_text())
    constants = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    namespace: dict[str, object] = {}
    for name, value in constants.items():
        try:
            namespace[name] = eval(compile(ast.Expression(value), "locustfile", "eval"), {}, namespace)  # noqa: S307
        except Exception:  # noqa: S112 - only the simple string constants matter here
            continue
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "name":
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                names.add(value.value)
            elif isinstance(value, ast.Name) and isinstance(namespace.get(value.id), str):
                names.add(str(namespace[value.id]))
    return names


def test_request_names_are_the_services_route_templates(database_url: str) -> None:
    app = create_app(app_config(database_url))
    routes = {route_template(rule.rule) for rule in app.url_map.iter_rules()}
    names = _names_in_locustfile()
    assert names, "no request names found in the locustfile"
    assert names <= routes, names - routes


def test_a_short_headless_run_has_no_failures(served_app: Callable[..., Stack], tmp_path: Path) -> None:
    stack = served_app(workers=2)
    prefix = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", stack.settings.app_url, "--users", "8", "--spawn-rate", "8", "--run-time", "6s",
            "--csv", str(prefix), "--only-summary", "--exit-code-on-error", "1",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with (tmp_path / "run_stats.csv").open() as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    aggregated = rows.pop("Aggregated")
    assert int(aggregated["Request Count"]) > 50
    assert int(aggregated["Failure Count"]) == 0
    assert set(rows) >= {"/", "/api/v1/tasks", "/api/v1/tasks/{task_id}", "/api/v1/stats"}
