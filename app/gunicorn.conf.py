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

from app.config import DEFAULT_WORKERS, env_int
from app.endpoints import HTTP_PORT


def _int(name: str, default: int, low: int, high: int) -> int:
    return env_int(os.environ, name, default, low, high)


bind = f"{os.environ.get('HOST', '0.0.0.0')}:{_int('PORT', HTTP_PORT, 1, 65535)}"  # noqa: S104 - pods listen on all interfaces

# gevent workers (app/worker.py, docs/adr/0005): a connection waits in a greenlet, not in a worker,
# so clients that send their request slowly (slowloris, slow bodies) cannot hold the service, with no
# buffering proxy assumed in front. The work itself stays one process per core. The DB pool is shared
# by a worker's greenlets; a greenlet waits for a free connection (app/db.py) instead of failing.
worker_class = "app.worker.Worker"
worker_connections = _int("GUNICORN_WORKER_CONNECTIONS", 1000, 10, 100_000)
workers = _int("GUNICORN_WORKERS", DEFAULT_WORKERS, 1, 64)
timeout = _int("GUNICORN_TIMEOUT", 30, 5, 600)
# SIGTERM → stop accepting, finish in-flight requests, exit within this many seconds. The pod's
# terminationGracePeriodSeconds covers preStop sleep + this (k8s/base, checked by a test).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20, 1, 300)
# No keep-alive: every response closes its connection (as sync workers always did), so each request
# is a new accept, taken by whichever worker is free. A kept-alive connection stays with the worker
# that accepted it; measured with gevent workers, wrk -c8: p99 175-330 ms kept alive, 19 ms closed
# (docs/adr/0011). An ALB never reuses a connection answered with
# `Connection: close`, so the keep-alive race behind sporadic 502s cannot happen either.
keepalive = 0
# The app is imported in each worker after the fork, never in the master: nothing connects or
# starts threads before forking.
preload_app = False
# gunicorn ≥ 25 opens a control socket under $HOME by default: pointless in a pod and read-only there.
control_socket_disable = True
# The heartbeat file is fchmod-ed constantly; keep it in memory, not on a disk-backed /tmp.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108
limit_request_line = 4094
limit_request_fields = 100
# Trust X-Forwarded-* only through the app's PROXY_HOPS (app/security.py, werkzeug's ProxyFix).
# gunicorn's own default believes X-Forwarded-Proto from 127.0.0.1, so any local client, or a
# sidecar in the pod, could make a plain request look like HTTPS.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}

# The service writes its own JSON access line (app/logs.py); gunicorn's messages share the format,
# and its own access log is not even built (app/worker.py).
accesslog = None
logger_class = "app.worker.Logger"
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
