"""The local stack behind `make run`: embedded PostgreSQL, the service under gunicorn, Prometheus, Alertmanager.

``python -m local.stack run`` starts what is not already there, prints the URLs and waits; Ctrl-C
(or SIGTERM) stops, in reverse order, exactly what it started. State lives under ``.local/`` (ignored
by git), so the database survives restarts. Ports and the database come from the environment:

    APP_PORT (8000)  PROMETHEUS_PORT (9090)  ALERTMANAGER_PORT (9093)  PG_PORT (55432)
    DATABASE_URL     use this PostgreSQL instead of the embedded one
    STACK_STATE_DIR  where state lives (.local/ in the repository)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests
import yaml

from app import endpoints
from app.config import DEFAULT_WORKERS, ConfigError, env_int
from local.monitoring import alertmanager_config, prometheus_config
from local.postgres import EmbeddedPostgres, PostgresError
from observability.paths import ROOT

DEFAULT_STATE_DIR = ROOT / ".local"
DATABASE_NAME = "taskboard"

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
PG_PORT = 55432
PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"  # Debian's name for the alertmanager server
UP_MESSAGE = "The local stack is up"  # printed once every part answers; tools wait for it
DATABASE_DIR = "pgdata"  # the embedded cluster's name in the state folder


class StackError(RuntimeError):
    """The stack could not start; the message says which part and why."""


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    try:
        return env_int(env, name, default, 1, 65535)
    except ConfigError as exc:
        raise StackError(str(exc)) from None


@dataclass(frozen=True)
class StackSettings:
    """Where each part listens and how often Prometheus looks."""

    state_dir: Path = DEFAULT_STATE_DIR
    app_port: int = endpoints.HTTP_PORT
    prometheus_port: int = PROMETHEUS_PORT
    alertmanager_port: int = ALERTMANAGER_PORT
    pg_port: int = PG_PORT
    database_url: str | None = None
    scrape_interval: str = "5s"
    evaluation_interval: str = "5s"
    workers: int = DEFAULT_WORKERS
    seed: bool = True
    # The drill switch (app/faults.py), on for the local stack so `make slo-check` can drill against
    # it; its token is kept in .local/fault_token.
    fault_injection: bool = True
    app_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> StackSettings:
        values: dict[str, Any] = {
            "app_port": _port(env, "APP_PORT", endpoints.HTTP_PORT),
            "prometheus_port": _port(env, "PROMETHEUS_PORT", PROMETHEUS_PORT),
            "alertmanager_port": _port(env, "ALERTMANAGER_PORT", ALERTMANAGER_PORT),
            "pg_port": _port(env, "PG_PORT", PG_PORT),
            "database_url": env.get("DATABASE_URL") or None,
            "state_dir": Path(env["STACK_STATE_DIR"]).resolve() if env.get("STACK_STATE_DIR") else DEFAULT_STATE_DIR,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_http(url: str, timeout: float, *, expect: int = 200, alive: Callable[[], bool] | None = None) -> None:
    """Poll ``url`` until it answers ``expect``; fail early if ``alive`` says the process died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise StackError(f"{url}: the process exited while starting")
        try:
            response = requests.get(url, timeout=2)
            if response.status_code == expect:
                return
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise StackError(f"{url}: not ready after {timeout:.0f} s ({last})")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path | None


class Stack:
    """Starts the parts in order and stops what it started, in reverse."""

    def __init__(self, settings: StackSettings, *, out: IO[str] = sys.stdout) -> None:
        self.settings = settings
        self.state = settings.state_dir
        self.out = out
        self.children: list[Child] = []
        self.postgres: EmbeddedPostgres | None = None
        self.database_url = settings.database_url or ""
        self._started_postgres = False

    # -- helpers -----------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def _secret(self, name: str) -> str:
        """A random value kept in .local/<name> (mode 0600), the same across restarts."""
        path = self.state / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip()

    def _spawn(self, name: str, command: list[str], env: Mapping[str, str], *, log_to_terminal: bool = False) -> Child:
        log_path = None if log_to_terminal else self.state / "logs" / f"{name}.log"
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            stream: Any = log_path.open("ab")
        else:
            stream = None
        # A session of its own: Ctrl-C reaches only us, and we stop the parts in order.
        process = subprocess.Popen(  # noqa: S603 - commands are built here from fixed parts
            command,
            env=dict(env),
            stdout=stream,
            stderr=subprocess.STDOUT if stream else None,
            start_new_session=True,
            cwd=ROOT,
        )
        if stream is not None:
            stream.close()  # the child holds its own descriptor
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def _require_port(self, port: int, variable: str, what: str) -> None:
        if not port_free(port):
            raise StackError(f"{what}: port {port} on 127.0.0.1 is already in use; set {variable} to another port")

    def _log_tail(self, child: Child) -> str:
        if child.log_path is None or not child.log_path.exists():
            return ""
        lines = child.log_path.read_text(errors="replace").splitlines()[-15:]
        return "\n".join(lines)

    # -- parts -------------------------------------------------------------------------------

    def start_database(self) -> None:
        if self.database_url:
            self._say("database:     DATABASE_URL (given)")
            return
        pg = embedded_postgres(self.state, self.settings.pg_port)
        try:
            if not pg.running():
                self._require_port(self.settings.pg_port, "PG_PORT", "PostgreSQL")
                pg.start()
                self._started_postgres = True
        except PostgresError as exc:
            raise StackError(f"PostgreSQL: {exc}") from exc
        self.postgres = pg
        self.database_url = pg.ensure_database(DATABASE_NAME)
        self._say(f"database:     {self.database_url} (data in {pg.data_dir})")

    def app_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "APP_ENV": "development",
                "DATABASE_URL": self.database_url,
                "SECRET_KEY": self._secret("secret_key"),
                "HOST": "127.0.0.1",
                "PORT": str(self.settings.app_port),
                "GUNICORN_WORKERS": str(self.settings.workers),
                "PROMETHEUS_MULTIPROC_DIR": str(self.state / "metrics-multiproc"),
                "FAULT_STATE_PATH": str(self.state / "faults.json"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.settings.fault_injection:
            env["FAULT_INJECTION_ENABLED"] = "true"
            env["FAULT_INJECTION_TOKEN"] = self._secret("fault_token")
        env.update(self.settings.app_env)
        return env

    def prepare_schema(self) -> None:
        env = self.app_environment()
        for module in ("app.migrate", *(("app.seed",) if self.settings.seed else ())):
            result = subprocess.run(  # noqa: S603
                [sys.executable, "-m", module], env=env, cwd=ROOT, capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise StackError(f"{module} failed:\n{result.stdout}{result.stderr}")

    def start_app(self, *, log_to_terminal: bool) -> None:
        self._require_port(self.settings.app_port, "APP_PORT", "the service")
        command = [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
        child = self._spawn("app", command, self.app_environment(), log_to_terminal=log_to_terminal)
        self._wait(child, f"{self.settings.app_url}{endpoints.READYZ}", 60)

    def start_prometheus(self) -> None:
        binary = _binary(PROMETHEUS_BIN, "prometheus")
        self._require_port(self.settings.prometheus_port, "PROMETHEUS_PORT", "Prometheus")
        config = self.state / "prometheus" / "prometheus.yml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(prometheus_config(self.settings), sort_keys=False))
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.state / 'prometheus' / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.settings.prometheus_port}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=7d",
            "--enable-feature=exemplar-storage",
            # Resend firing alerts every 10 s instead of every minute: the first send happens before
            # Alertmanager is discovered, and drills should not wait a minute for the second.
            "--rules.alert.resend-delay=10s",
        ]
        child = self._spawn("prometheus", command, os.environ)
        self._wait(child, f"{self.settings.prometheus_url}/-/ready", 60)

    def start_alertmanager(self) -> None:
        binary = _binary(ALERTMANAGER_BIN, "prometheus-alertmanager")
        self._require_port(self.settings.alertmanager_port, "ALERTMANAGER_PORT", "Alertmanager")
        config = self.state / "alertmanager" / "alertmanager.yml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(alertmanager_config(), sort_keys=False))
        command = [
            binary,
            f"--config.file={config}",
            f"--storage.path={self.state / 'alertmanager' / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.settings.alertmanager_port}",
            "--cluster.listen-address=",  # one local instance: no gossip port
        ]
        child = self._spawn("alertmanager", command, os.environ)
        self._wait(child, f"{self.settings.alertmanager_url}/-/ready", 60)

    def _wait(self, child: Child, url: str, timeout: float) -> None:
        try:
            wait_http(url, timeout, alive=lambda: child.process.poll() is None)
        except StackError as exc:
            tail = self._log_tail(child)
            raise StackError(
                f"{child.name}: {exc}" + (f"\nlast lines of {child.log_path}:\n{tail}" if tail else "")
            ) from None

    # -- whole stack -------------------------------------------------------------------------

    def start(self, *, app_logs_to_terminal: bool = False) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        try:
            self.start_database()
            self.prepare_schema()
            self.start_alertmanager()
            self.start_app(log_to_terminal=app_logs_to_terminal)
            self.start_prometheus()
        except BaseException:
            self.stop()
            raise
        self._write_state()

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "app_url": self.settings.app_url,
            "prometheus_url": self.settings.prometheus_url,
            "alertmanager_url": self.settings.alertmanager_url,
            "database_url": self.database_url,
            "children": {child.name: child.process.pid for child in self.children},
            "state_dir": str(self.state),
            "scrape_interval": self.settings.scrape_interval,
            "evaluation_interval": self.settings.evaluation_interval,
            "fault_token_file": str(self.state / "fault_token") if self.settings.fault_injection else None,
            "embedded_postgres": (
                {
                    "requested_dir": str(self.postgres.requested_dir),
                    "data_dir": str(self.postgres.data_dir),
                    "port": self.postgres.port,
                }
                if self.postgres
                else None
            ),
        }
        (self.state / "stack.json").write_text(json.dumps(state, indent=2))

    def stop(self, timeout: float = 30) -> None:
        """Stop what this stack started, newest first; leave anything else alone."""
        while self.children:
            child = self.children.pop()
            if child.process.poll() is None:
                child.process.terminate()
                try:
                    child.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait()
        if self._started_postgres and self.postgres is not None:
            self.postgres.stop()
            self._started_postgres = False
        (self.state / "stack.json").unlink(missing_ok=True)

    def urls(self) -> str:
        s = self.settings
        return "\n".join(
            [
                f"  task board     {s.app_url}/",
                f"  JSON API       {s.app_url}{endpoints.API_PREFIX}/tasks   (OpenAPI: {s.app_url}{endpoints.OPENAPI})",
                f"  metrics        {s.app_url}{endpoints.METRICS}",
                f"  Prometheus     {s.prometheus_url}/   (targets: /targets, rules: /rules, alerts: /alerts)",
                f"  Alertmanager   {s.alertmanager_url}/",
            ]
        )


def running_pid(state_dir: Path) -> int | None:
    """The pid of the `make run` whose state is in ``state_dir``, if it is still alive."""
    try:
        pid = int(json.loads((state_dir / "stack.json").read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError):
        return None
    return pid


def embedded_postgres(state_dir: Path, port: int) -> EmbeddedPostgres:
    """The embedded cluster of the stack whose state is in ``state_dir``."""
    return EmbeddedPostgres(state_dir / DATABASE_DIR, port)


def remove_state(state_dir: Path) -> None:
    """Delete a stack's state: its folder and its embedded cluster (as root that lives elsewhere)."""
    embedded_postgres(state_dir, PG_PORT).remove()
    shutil.rmtree(state_dir, ignore_errors=True)


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StackError(f"{name} not found: install the Debian package {package} (make run does this)")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command",
        choices=["run", "config", "remove"],
        help="run the stack, print the Prometheus config, or delete the stack's state and database",
    )
    args = parser.parse_args(argv)
    try:
        settings = StackSettings.from_env(os.environ)
    except StackError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(yaml.safe_dump(prometheus_config(settings), sort_keys=False))
        return 0
    if args.command == "remove":
        if running_pid(settings.state_dir) is not None:
            print(f"make clean-local: the stack in {settings.state_dir} is running; stop it first", file=sys.stderr)
            return 1
        remove_state(settings.state_dir)
        print(f"removed {settings.state_dir} and its embedded database")
        return 0
    # Imported here: local.supervise builds on this module's Stack.
    from local.supervise import run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
