"""`make fresh-check`: the README's two commands, run on a pristine Debian 12 in a podman container.

A green `make test` on a developer's machine proves the tree, not a new user's machine: a system user,
a venv or a Debian package left by an earlier run can hide a missing step. So this starts a container
that has only what a fresh Debian 12 has plus git, make and python3, clones the commit under test into
root's 0700 home, runs exactly `make run` there and checks from outside what the README promises;
stops it with Ctrl-C's signal and finds nothing left running; starts it again (warm: fast, the data
kept); then runs `make test` in a second pristine container. The containers share the host's network
and read the host's registry settings (local/registries.py).

Exit codes: 0 every step passed; 1 a README step failed on the pristine machine (the step is named);
2 the check itself could not run (no podman, a port taken on the host, a container that would not start).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from app import endpoints, metric_names
from local import registries
from local.container import CLONE, FRESH_IMAGE, Container, MakeRun, StepFailed, ensure_fresh_image
from local.image import Engine, ImageError, podman
from local.stack import (
    ALERTMANAGER_PORT,
    PG_PORT,
    PROMETHEUS_PORT,
    UP_MESSAGE,
    StackSettings,
    port_free,
)
from observability.paths import ROOT, RULES_DIR

# Set in the container that runs `make test`: the tests that need podman skip there and say why.
IN_FRESH_CHECK = "TASKBOARD_IN_FRESH_CHECK"
NESTED_PODMAN = (
    "inside make fresh-check's container: podman cannot run nested in an unprivileged podman container "
    "(no user namespaces or mounts of its own); the host's make test builds and runs the image"
)
REPORT = ROOT / "reports" / "fresh"
COLD_TIMEOUT = 20 * 60
WARM_BOUND = 30.0  # seconds from `make run` to the first page once everything is installed
STOP_TIMEOUT = 90
TEST_TIMEOUT = 60 * 60
PORTS = {
    "APP_PORT": endpoints.HTTP_PORT,
    "PROMETHEUS_PORT": PROMETHEUS_PORT,
    "ALERTMANAGER_PORT": ALERTMANAGER_PORT,
    "PG_PORT": PG_PORT,
}


@dataclass
class Report:
    commit: str
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    failed: str = ""
    test_summary: str = ""

    def ok(self, step: str, detail: str = "") -> None:
        self.passed.append(step)
        print(f"fresh-check: ok    {step}{f' ({detail})' if detail else ''}", flush=True)


def wait_for_page(run: MakeRun, step: str, timeout: float) -> float:
    """Seconds until the page answers 200 and `make run` says the whole stack is up (Prometheus starts last)."""
    started = time.monotonic()
    url = f"http://127.0.0.1:{endpoints.HTTP_PORT}/"
    while time.monotonic() - started < timeout:
        try:
            if requests.get(url, timeout=2).status_code == 200 and UP_MESSAGE in run.output():
                return time.monotonic() - started
        except requests.RequestException:
            pass
        status = run.exited()
        if status is not None:
            raise StepFailed(step, f"make run exited with {status} before serving the page:\n{run.tail()}")
        time.sleep(1)
    raise StepFailed(step, f"no page at {url} after {timeout:.0f} s:\n{run.tail()}")


def check_served(report: Report) -> int:
    """What the README says `make run` serves; returns the id of a task it created."""
    settings = StackSettings()
    app, prometheus, alertmanager = settings.app_url, settings.prometheus_url, settings.alertmanager_url
    step = "a task is created"
    created = _request("POST", f"{app}{endpoints.API_PREFIX}/tasks", step, json={"title": "made on a fresh machine"})
    if created.status_code != 201:
        raise StepFailed(step, f"POST {endpoints.API_PREFIX}/tasks answered {created.status_code}: {created.text}")
    task_id = int(created.json()["id"])
    report.ok(step, f"id {task_id}")

    step = "/metrics has the request histogram"
    metrics = _request("GET", f"{app}{endpoints.METRICS}", step).text
    if metric_names.HTTP_REQUEST_DURATION.bucket not in metrics:
        raise StepFailed(step, f"{metric_names.HTTP_REQUEST_DURATION.bucket} is not in {endpoints.METRICS}")
    report.ok(step)

    step = "Prometheus scrapes the app"
    query = f'up{{job="{endpoints.SERVICE_NAME}"}}'
    deadline = time.monotonic() + 60
    value = None
    while time.monotonic() < deadline:
        result = _request("GET", f"{prometheus}/api/v1/query", step, params={"query": query}).json()["data"]["result"]
        value = result[0]["value"][1] if result else None
        if value == "1":
            break
        time.sleep(1)
    if value != "1":
        raise StepFailed(step, f"{query} is {value!r} after 60 s, not 1")
    report.ok(step)

    step = "Prometheus has the rules loaded"
    groups = _request("GET", f"{prometheus}/api/v1/rules", step).json()["data"]["groups"]
    loaded = {Path(group["file"]).name for group in groups}
    expected = {path.name for path in RULES_DIR.iterdir() if path.suffix in {".yml", ".yaml"}}
    if loaded != expected or not expected:
        raise StepFailed(step, f"rule files loaded {sorted(loaded)}, expected {sorted(expected)}")
    report.ok(step, f"{len(groups)} groups from {len(loaded)} files")

    step = "Alertmanager is ready"
    ready = _request("GET", f"{alertmanager}/-/ready", step)
    if ready.status_code != 200:
        raise StepFailed(step, f"{alertmanager}/-/ready answered {ready.status_code}")
    report.ok(step)
    return task_id


def _request(method: str, url: str, step: str, **kwargs: object) -> requests.Response:
    try:
        response = requests.request(method, url, timeout=10, **kwargs)  # type: ignore[arg-type]
    except requests.RequestException as exc:
        raise StepFailed(step, f"{method} {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500:
        raise StepFailed(step, f"{method} {url} answered {response.status_code}: {response.text[:300]}")
    return response


def stop(run: MakeRun, step: str) -> None:
    """Ctrl-C: `make run` ends, nothing it started is left in the container, and no port stays open."""
    run.interrupt()
    deadline = time.monotonic() + STOP_TIMEOUT
    while run.exited() is None:
        if time.monotonic() > deadline:
            raise StepFailed(step, f"make run still running {STOP_TIMEOUT} s after SIGINT:\n{run.tail()}")
        time.sleep(0.5)
    output = run.output()
    if "Traceback" in output or "stopping the local stack" not in output:
        raise StepFailed(step, f"make run did not stop cleanly:\n{run.tail()}")
    left = run.box.processes()
    if left:
        raise StepFailed(step, "still running after Ctrl-C:\n" + "\n".join(left))
    open_ports = [f"{name} {port}" for name, port in PORTS.items() if not port_free(port)]
    if open_ports:
        raise StepFailed(step, f"still listening after Ctrl-C: {', '.join(open_ports)}")


def require_ports() -> None:
    busy = [f"{name} {port}" for name, port in PORTS.items() if not port_free(port)]
    if busy:
        raise StepFailed("ports", f"taken on this host, needed by the README's make run: {', '.join(busy)}", code=2)


def check_run(eng: Engine, host: registries.HostSettings, report: Report, *, repo: Path, keep: bool) -> None:
    require_ports()
    box = Container.start(eng, host, {}, repo=repo, commit=report.commit)
    try:
        report.ok("pristine container, clone in a 0700 home")
        cold = MakeRun(box, "cold")
        report.seconds["cold_start_to_page"] = round(wait_for_page(cold, "cold make run", COLD_TIMEOUT), 1)
        report.ok("cold make run serves the page and says it is up", f"{report.seconds['cold_start_to_page']} s")
        task_id = check_served(report)
        stop(cold, "Ctrl-C stops everything")
        report.ok("Ctrl-C stops everything")

        warm = MakeRun(box, "warm")
        report.seconds["warm_start_to_page"] = round(wait_for_page(warm, "warm make run", COLD_TIMEOUT), 1)
        if report.seconds["warm_start_to_page"] > WARM_BOUND:
            raise StepFailed("warm make run", f"took {report.seconds['warm_start_to_page']} s, bound {WARM_BOUND} s")
        report.ok("warm make run serves the page and says it is up", f"{report.seconds['warm_start_to_page']} s")
        step = "the task survives the restart"
        kept = _request("GET", f"{StackSettings().app_url}{endpoints.API_PREFIX}/tasks/{task_id}", step)
        if kept.status_code != 200 or kept.json()["title"] != "made on a fresh machine":
            raise StepFailed(step, f"task {task_id}: {kept.status_code} {kept.text[:200]}")
        report.ok(step)
        stop(warm, "Ctrl-C stops everything again")
        report.ok("Ctrl-C stops everything again")
        report.bytes["run_container_bytes"] = box.size()
    finally:
        if not keep:
            box.remove()


def check_test(
    eng: Engine, host: registries.HostSettings, report: Report, folder: Path, *, repo: Path, keep: bool
) -> None:
    box = Container.start(eng, host, {IN_FRESH_CHECK: "1"}, repo=repo, commit=report.commit)
    log = folder / "make-test.log"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.monotonic()
        with log.open("w") as out:
            try:
                result = subprocess.run(  # noqa: S603
                    box.eng.command("exec", box.name, "bash", "-c", f"cd {CLONE} && make test"),
                    env=eng.environment(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=TEST_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise StepFailed("make test", f"not finished after {TEST_TIMEOUT} s (log: {log})", code=2) from exc
        report.seconds["make_test"] = round(time.monotonic() - started, 1)
        text = log.read_text(errors="replace")
        summaries = re.findall(r"^=+ (.*(?:passed|failed|error).*) =+$", text, re.M)
        report.test_summary = summaries[-1] if summaries else ""
        if result.returncode != 0:
            tail = "\n".join(text.splitlines()[-30:])
            raise StepFailed("make test", f"exited {result.returncode} (log: {log}):\n{tail}")
        report.ok("make test", f"{report.test_summary}, {report.seconds['make_test']} s")
        report.bytes["test_container_bytes"] = box.size()
    finally:
        if not keep:
            box.remove()


# -- the command ---------------------------------------------------------------------------------


def resolve_commit(repo: Path, ref: str) -> str:
    found = subprocess.run(  # noqa: S603
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],  # noqa: S607
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise StepFailed("commit", f"{ref} is not a commit of {repo}", code=2)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=False)  # noqa: S607
    if dirty.stdout.strip():
        print("fresh-check: note: uncommitted changes are not checked (the container clones the commit)")
    return found.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.fresh", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["run", "test", "all"], default="all", help="which README command")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the repository to clone (default this one)")
    parser.add_argument("--commit", default="HEAD", help="the commit to check (default HEAD)")
    parser.add_argument("--report", type=Path, default=REPORT, help="where summary.json and logs go")
    parser.add_argument("--keep", action="store_true", help="leave the containers for inspection")
    args = parser.parse_args(argv)
    report = Report(commit=args.commit)
    try:
        report.commit = resolve_commit(args.repo, args.commit)
        if args.part in ("run", "all"):
            require_ports()
        try:
            eng = podman()
            started = time.monotonic()
            ensure_fresh_image(eng)
            report.seconds["image"] = round(time.monotonic() - started, 1)
            report.bytes["image_bytes"] = int(eng.run("image", "inspect", "--format", "{{.Size}}", FRESH_IMAGE).stdout)
        except ImageError as exc:
            raise StepFailed("pristine image", str(exc), code=2) from exc
        host = registries.host_settings()
        if args.part in ("run", "all"):
            check_run(eng, host, report, repo=args.repo.resolve(), keep=args.keep)
        if args.part in ("test", "all"):
            check_test(eng, host, report, args.report, repo=args.repo.resolve(), keep=args.keep)
    except StepFailed as exc:
        report.failed = exc.step
        print(f"fresh-check: FAILED at {exc.step!r}: {exc}", file=sys.stderr)
        return exc.code
    finally:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "summary.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"fresh-check: passed: {json.dumps(report.seconds)}; sizes {json.dumps(report.bytes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
