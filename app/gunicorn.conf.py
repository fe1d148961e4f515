"""gunicorn settings for every environment: local `make run`, the image, and production pods.

Run: ``gunicorn -c app/gunicorn.conf.py "app:create_app()"``. Tunables come from the environment
(GUNICORN_*, HOST, PORT); each is validated here so a typo stops the start with its name.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any

# prometheus-client's multiprocess mode needs a directory shared by the workers, and reads the
# variable when it is first imported; importing the app package below imports it, so set it first.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / "taskboard-metrics"))

from app.config import ConfigError
from app.endpoints import HTTP_PORT


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name}: must be an integer from {low} to {high}, got {raw!r}")
    return int(raw)


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{_int('PORT', HTTP_PORT, 1, 65535)}"  # noqa: S104 - pods listen on all interfaces

# Sync workers: on 2 shared cores they gave the steadiest p99 (see app/metrics.py and `make bench`).
# Each worker serves one request at a time, so the pool needs one connection per worker.
worker_class = "sync"
workers = _int("GUNICORN_WORKERS", 2, 1, 64)
timeout = _int("GUNICORN_TIMEOUT", 30, 5, 600)
# SIGTERM → stop accepting, finish in-flight requests, exit within this many seconds. The pod's
# terminationGracePeriodSeconds covers preStop sleep + this (k8s/base, checked by a test).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20, 1, 300)
# Above the ALB idle timeout (60 s) so the balancer, not us, closes idle connections; sync workers
# answer with Connection: close anyway, this matters if the worker class changes.
keepalive = _int("GUNICORN_KEEPALIVE", 75, 1, 3600)
# The app is imported in each worker after the fork, never in the master: nothing connects or
# starts threads before forking.
preload_app = False
# gunicorn ≥ 25 opens a control socket under $HOME by default: pointless in a pod and read-only there.
control_socket_disable = True
# The heartbeat file is fchmod-ed constantly; keep it in memory, not on a disk-backed /tmp.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108
limit_request_line = 4094
limit_request_fields = 100

# The service writes its own JSON access line (app/logs.py); gunicorn's messages share the format.
accesslog = None
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.logs.json_formatter"}},
    "filters": {"context": {"()": "app.logs.ContextFilter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
            "filters": ["context"],
        }
    },
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def on_starting(server: Any) -> None:
    """Start from empty metric files: counters restart with the server, as Prometheus expects."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def post_fork(server: Any, worker: Any) -> None:
    from app import tracing

    tracing.install_provider()


def post_worker_init(worker: Any) -> None:
    """On SIGTERM turn /readyz to 503 first, then let gunicorn finish in-flight requests and exit."""
    health = getattr(worker.wsgi, "extensions", {}).get("health")
    if health is None:  # another WSGI app under this config (the bench baseline)
        return
    stop = worker.handle_exit

    def _terminate(signum: int, frame: Any) -> None:
        health.shutting_down()
        stop(signum, frame)

    signal.signal(signal.SIGTERM, _terminate)


def worker_exit(server: Any, worker: Any) -> None:
    from app import tracing

    tracing.shutdown()


def child_exit(server: Any, worker: Any) -> None:
    from app.metrics import mark_process_dead

    mark_process_dead(worker.pid)
