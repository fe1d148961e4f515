"""The image, built without a Docker engine and run as production runs it: read-only, non-root, no capabilities.

Built offline with podman (a locally made Debian base and a host wheelhouse; see local/image.py), then
run against the tests' PostgreSQL: migrations in the container, the probes, /metrics, the page, the
HEALTHCHECK, and a clean stop on SIGTERM within the grace period.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app import endpoints
from local.fresh import IN_FRESH_CHECK, NESTED_PODMAN
from local.image import DOCKERFILE, Engine, build, image_size
from tests.conftest import ROOT, TEST_SECRET, PostgresServer, free_port
from tests.tiers import slow_fixture

GRACE = 20
REPORT = ROOT / "reports" / "image.json"


@pytest.fixture(scope="module")
@slow_fixture("builds the image with podman and runs it")
def image() -> Iterator[tuple[Engine, str]]:
    if os.environ.get(IN_FRESH_CHECK):
        # Inside make fresh-check's own container; the host's make test builds and runs the image.
        pytest.skip(NESTED_PODMAN)
    started = time.monotonic()
    eng, reference = build("test", offline=True)
    size = image_size(eng, reference)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        json.dumps({"image": reference, "bytes": size, "build_seconds": round(time.monotonic() - started)})
    )
    print(f"\nimage {reference}: {size / 1e6:.0f} MB, built in {time.monotonic() - started:.0f} s")
    yield eng, reference


def test_hadolint_has_nothing_to_say() -> None:
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "hadolint"), "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_base_image_default_is_pinned_by_digest() -> None:
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert default, "the Dockerfile has no BASE_IMAGE default"
    assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", default.group(1)), default.group(1)


def test_image_metadata(image: tuple[Engine, str]) -> None:
    eng, reference = image
    inspected = json.loads(eng.run("image", "inspect", reference).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
    assert str(endpoints.HTTP_PORT) + "/tcp" in config["ExposedPorts"]
    # podman reports the HEALTHCHECK next to Config, docker inside it.
    healthcheck = config.get("Healthcheck") or inspected.get("Healthcheck")
    assert healthcheck and healthcheck["Test"][0] == "CMD"
    labels = config["Labels"]
    for key in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{key}" in labels
    assert labels["org.opencontainers.image.revision"] not in ("", "unknown")


def test_runtime_has_no_compilers_and_no_pip_cache(image: tuple[Engine, str]) -> None:
    eng, reference = image
    probe = eng.run(
        "run", "--rm", "--user", "10001:10001", reference,
        "sh", "-c", "command -v gcc cc make || true; ls /root/.cache/pip 2>/dev/null || true",
    )  # fmt: skip
    assert probe.stdout.strip() == ""


def test_container_runs_read_only_non_root_and_stops_cleanly(
    image: tuple[Engine, str], pg_server: PostgresServer, tmp_path: Path
) -> None:
    eng, reference = image
    database_url = pg_server.create_database("image")
    hardening = ["--read-only", "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    env = ["-e", f"DATABASE_URL={database_url}"]

    migrated = eng.run("run", "--rm", *hardening, *env, reference, "python", "-m", "app.migrate")
    assert "Running upgrade" in migrated.stdout + migrated.stderr

    port = free_port()
    name = f"taskboard-test-{port}"
    eng.run(
        "run", "-d", "--name", name, *hardening,
        "--tmpfs", "/tmp:rw,size=64m",  # the pod's emptyDir: metrics files and fault state
        *env, "-e", "APP_ENV=production", "-e", f"SECRET_KEY={TEST_SECRET}",
        "-e", "HOST=127.0.0.1", "-e", f"PORT={port}", "-e", f"GUNICORN_GRACEFUL_TIMEOUT={GRACE}",
        reference,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}{endpoints.READYZ}", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        else:
            raise AssertionError(eng.run("logs", name, check=False).stdout)

        assert requests.get(f"{base}{endpoints.HEALTHZ}", timeout=5).status_code == 200
        created = requests.post(f"{base}{endpoints.API_PREFIX}/tasks", json={"title": "in a container"}, timeout=5)
        assert created.status_code == 201
        page = requests.get(f"{base}/", timeout=5)
        assert page.status_code == 200 and "in a container" in page.text
        metrics = requests.get(f"{base}{endpoints.METRICS}", timeout=5).text
        assert "taskboard_http_requests_total" in metrics
        assert eng.run("healthcheck", "run", name, check=False).returncode == 0
        whoami = eng.run("exec", name, "id", "-u").stdout.strip()
        assert whoami == "10001"
        cannot_write = eng.run("exec", name, "sh", "-c", "touch /srv/app/x", check=False)
        assert cannot_write.returncode != 0

        started = time.monotonic()
        eng.run("stop", "-t", str(GRACE), name)
        took = time.monotonic() - started
        state = json.loads(eng.run("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, eng.run("logs", name, check=False).stdout[-3000:]
        assert took < GRACE
        logs = eng.run("logs", name).stdout
        assert "Handling signal: term" in logs
        for line in logs.splitlines():
            if line.startswith("{"):
                json.loads(line)
    finally:
        eng.run("rm", "-f", name, check=False)
