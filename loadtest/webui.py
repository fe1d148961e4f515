"""`make loadtest`: Locust's web UI (http://127.0.0.1:8089) against the local stack or a remote URL.

The target is, in order: ``--host`` / ``LOCUST_HOST``; the stack `make run` is serving (read from
.local/stack.json); otherwise a local stack started here and stopped on Ctrl-C. Users, spawn rate and
run time are Locust's own options or variables (LOCUST_USERS, LOCUST_SPAWN_RATE, LOCUST_RUN_TIME),
with the defaults below; the UI lets you change them too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from app import endpoints
from app.config import ConfigError, env_float, env_int
from loadtest.runner import LOCUSTFILE
from local.stack import DEFAULT_STATE_DIR, Stack, StackError, StackSettings

ROOT = Path(__file__).resolve().parent.parent
LOCUST_PORT = 8089
DEFAULT_USERS = 20
DEFAULT_SPAWN_RATE = 5


def running_stack_url(state_dir: Path = DEFAULT_STATE_DIR) -> str | None:
    """The app URL of a stack `make run` started, if it is up."""
    state = state_dir / "stack.json"
    if not state.exists():
        return None
    url: str = json.loads(state.read_text())["app_url"]
    try:
        if requests.get(f"{url}{endpoints.HEALTHZ}", timeout=2).status_code == 200:
            return url
    except requests.RequestException:
        return None
    return None


def locust_command(host: str, web_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--host",
        host,
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--users",
        str(env_int(os.environ, "LOCUST_USERS", DEFAULT_USERS, 1, 100_000)),
        "--spawn-rate",
        str(env_float(os.environ, "LOCUST_SPAWN_RATE", DEFAULT_SPAWN_RATE, 0.1, 10_000)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.webui", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("LOCUST_HOST"), help="target base URL")
    try:
        web_port = env_int(os.environ, "LOCUST_WEB_PORT", LOCUST_PORT, 1, 65535)
        locust_command("http://127.0.0.1", web_port)  # the other variables, checked before anything starts
    except ConfigError as exc:
        print(f"make loadtest: {exc}", file=sys.stderr)
        return 2
    parser.add_argument("--web-port", type=int, default=web_port)
    args = parser.parse_args(argv)

    stack: Stack | None = None
    host = args.host or running_stack_url()
    if host is None:
        stack = Stack(StackSettings.from_env(os.environ))
        try:
            stack.start()
        except StackError as exc:
            print(f"make loadtest: {exc}", file=sys.stderr)
            return 2
        host = stack.settings.app_url
    print(f"Locust web UI: http://127.0.0.1:{args.web_port}/  (target {host}; Ctrl-C stops)", flush=True)
    try:
        return subprocess.run(locust_command(host, args.web_port), cwd=ROOT, check=False).returncode  # noqa: S603
    except KeyboardInterrupt:
        return 0
    finally:
        if stack is not None:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
