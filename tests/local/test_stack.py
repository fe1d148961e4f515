"""`make run`'s stack: everything comes up and is scraped, Ctrl-C stops what it started and nothing else."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from app import endpoints
from local.monitoring import prometheus_config
from local.stack import StackSettings, embedded_postgres, remove_state
from observability import generate
from tests.conftest import ROOT, free_port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if "Ctrl-C stops it" in line:  # the last line of the banner, after the URLs
            return process, lines
    process.kill()
    raise AssertionError("the stack did not come up:\n" + "".join(lines[-40:]))


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)  # what Ctrl-C delivers
    out, _ = process.communicate(timeout=60)
    return out


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "STACK_STATE_DIR": str(tmp_path / "state"),
            "APP_PORT": str(free_port()),
            "PROMETHEUS_PORT": str(free_port()),
            "ALERTMANAGER_PORT": str(free_port()),
            "PG_PORT": str(free_port()),
        }
    )
    yield env
    remove_state(Path(env["STACK_STATE_DIR"]))


@pytest.mark.slow  # `make run`'s whole stack
def test_the_stack_serves_scrapes_and_stops_only_what_it_started(stack_env: dict[str, str]) -> None:
    ports = {name: int(stack_env[name]) for name in ("APP_PORT", "PROMETHEUS_PORT", "ALERTMANAGER_PORT", "PG_PORT")}
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        _serve_scrape_and_stop(stack_env, ports)
        assert bystander.poll() is None, "a process the stack did not start was stopped"
    finally:
        bystander.kill()
        bystander.wait()


def _serve_scrape_and_stop(stack_env: dict[str, str], ports: dict[str, int]) -> None:
    process, lines = _start(stack_env)
    try:
        app = f"http://127.0.0.1:{ports['APP_PORT']}"
        prometheus = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"
        output = "".join(lines)
        assert f"{app}/" in output and prometheus in output
        assert requests.get(f"{app}/", timeout=5).status_code == 200
        seeded = requests.get(f"{app}{endpoints.API_PREFIX}/stats", timeout=5).json()["total"]
        assert seeded > 0  # the sample tasks
        assert requests.get(f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}/-/ready", timeout=5).status_code == 200

        deadline = time.monotonic() + 30
        health: dict[str, str] = {}
        while time.monotonic() < deadline:
            targets = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in targets}
            if health and set(health.values()) == {"up"}:
                break
            time.sleep(0.5)
        assert health == {endpoints.SERVICE_NAME: "up", "prometheus": "up", "alertmanager": "up"}
        series = requests.get(
            f"{prometheus}/api/v1/query", params={"query": f'up{{job="{endpoints.SERVICE_NAME}"}}'}, timeout=5
        ).json()
        assert series["data"]["result"][0]["value"][1] == "1"
    finally:
        out = _stop(process)
    assert process.returncode == 0, out
    for name, port in ports.items():
        assert not _listening(port), f"{name} {port} still open after Ctrl-C"


@pytest.mark.slow  # `make run`'s whole stack
def test_data_survives_a_restart_and_a_running_database_is_left_alone(stack_env: dict[str, str]) -> None:
    state = Path(stack_env["STACK_STATE_DIR"])
    state.mkdir(parents=True)
    process, _ = _start(stack_env)
    app = f"http://127.0.0.1:{stack_env['APP_PORT']}{endpoints.API_PREFIX}"
    try:
        task = requests.post(f"{app}/tasks", json={"title": "kept across restarts"}, timeout=5).json()
    finally:
        _stop(process)

    # Start the database ourselves: the stack must use it and must not stop it.
    pg = embedded_postgres(state, int(stack_env["PG_PORT"]))
    pg.start()
    try:
        process, _ = _start(stack_env)
        try:
            assert requests.get(f"{app}/tasks/{task['id']}", timeout=5).json()["title"] == "kept across restarts"
        finally:
            _stop(process)
        assert pg.running(), "the stack stopped a database it had not started"
    finally:
        pg.stop()


@pytest.mark.slow  # `make run`'s whole stack
def test_port_conflicts_name_the_variable(stack_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        stack_env["PROMETHEUS_PORT"] = str(busy.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "local.stack", "run"],
            env=stack_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert "set PROMETHEUS_PORT to another port" in result.stderr
    assert not _listening(int(stack_env["APP_PORT"])) and not _listening(int(stack_env["PG_PORT"]))


def test_prometheus_config_lists_every_rules_file_explicitly() -> None:
    config = prometheus_config(StackSettings())
    generated = sorted(str(generate.RULES_DIR / rule_file.filename) for rule_file, _ in generate.rule_files())
    assert len(generated) >= 5
    assert sorted(config["rule_files"]) == generated
    assert config["scrape_configs"][0]["job_name"] == endpoints.SERVICE_NAME
    assert yaml.safe_load(yaml.safe_dump(config)) == config


def test_clean_local_removes_the_state_and_the_cluster_but_not_while_running(stack_env: dict[str, str]) -> None:
    state = Path(stack_env["STACK_STATE_DIR"])
    pg = embedded_postgres(state, int(stack_env["PG_PORT"]))
    pg.start()
    pg.stop()
    assert pg.initialised()

    def remove() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "local.stack", "remove"],
            env=stack_env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    state.mkdir(parents=True, exist_ok=True)
    (state / "stack.json").write_text(json.dumps({"pid": os.getpid()}))  # a `make run` that is alive
    refused = remove()
    assert refused.returncode == 1 and "stop it first" in refused.stderr
    assert pg.initialised()

    (state / "stack.json").unlink()
    removed = remove()
    assert removed.returncode == 0, removed.stderr
    assert not state.exists() and not pg.data_dir.exists()
