"""Settings read from environment variables once, at start, and refused with a message naming the variable."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

N = TypeVar("N", int, float)

Environment = Literal["development", "test", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "test", "production")
# Defaults, named once: the settings below and the trace resource (app/tracing.py) both use them.
DEFAULT_ENVIRONMENT: Environment = "production"
DEFAULT_BUILD_VERSION = "dev"
# gunicorn workers per pod or stack (app/gunicorn.conf.py); the local stack, the gate and the bench start as many.
DEFAULT_WORKERS = 2

# Values people paste from tutorials; refused outside development.
_PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "dev", "development", "password"})
_MIN_SECRET_LENGTH = 32
_MIN_TOKEN_LENGTH = 16


class ConfigError(ValueError):
    """A setting is missing or malformed; the message starts with the variable's name."""


# The readers below are the one way every entry point (the service, gunicorn's config, the local
# stack, the SLO gate, the benchmarks) reads a variable: a bad value is one line naming it.


def env_text(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise ConfigError(f"{name}: required but not set")
    return default


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return _number(env, name, default, low, high, int, "an integer")


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: must be true or false, got {raw!r}")


def env_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    return _number(env, name, default, low, high, float, "a number")


def _number(env: Mapping[str, str], name: str, default: N, low: N, high: N, parse: Callable[[str], N], kind: str) -> N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be {kind}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low:g} and {high:g}, got {value:g}")
    return value


def env_choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env_text(env, name, default)
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}, got {value!r}")
    return value


def read_database_url_file(path: str) -> str:
    """The URL held in ``path`` (a mounted Secret), checked like DATABASE_URL."""
    try:
        url = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"DATABASE_URL_FILE: cannot read {path}: {exc.strerror}") from None
    if not url:
        raise ConfigError(f"DATABASE_URL_FILE: {path} is empty")
    if urlsplit(url).scheme not in {"postgresql", "postgres"}:
        raise ConfigError(f"DATABASE_URL_FILE: {path} must hold a postgresql:// URL")
    return url


def database_url_from(env: Mapping[str, str]) -> str:
    """The database URL from DATABASE_URL or DATABASE_URL_FILE (exactly one), checked.

    The file form exists for password rotation: the service re-reads it when it changes (app/db.py),
    so a rotated RDS password reaches new connections without a restart.
    """
    inline, path = env.get("DATABASE_URL", "").strip(), env.get("DATABASE_URL_FILE", "").strip()
    if inline and path:
        raise ConfigError("DATABASE_URL: set either DATABASE_URL or DATABASE_URL_FILE, not both")
    if path:
        return read_database_url_file(path)
    url = env_text(env, "DATABASE_URL")
    if urlsplit(url).scheme not in {"postgresql", "postgres"}:
        raise ConfigError("DATABASE_URL: must be a postgresql:// URL")
    return url


def redact_url(url: str) -> str:
    """The URL with any password replaced, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Settings:
    """The service's whole configuration; build it with :meth:`from_env`."""

    env: Environment
    secret_key: str
    database_url: str
    database_url_file: str | None
    db_pool_min: int
    db_pool_max: int
    db_statement_timeout_ms: int
    db_connect_timeout_s: int
    ready_timeout_ms: int
    max_body_bytes: int
    page_size: int
    api_max_limit: int
    proxy_hops: int
    log_level: str
    metrics_enabled: bool
    session_cookie_secure: bool
    fault_injection_enabled: bool
    fault_injection_token: str
    fault_state_path: str
    build_version: str
    build_commit: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate every setting; raise :class:`ConfigError` on the first bad one."""
        app_env: Environment = env_choice(env, "APP_ENV", DEFAULT_ENVIRONMENT, ENVIRONMENTS)  # type: ignore[assignment]

        secret_key = env.get("SECRET_KEY", "").strip()
        if app_env == "development" and not secret_key:
            # Good for one process only: `make run` passes a persistent key so that several
            # gunicorn workers agree on session signatures.
            secret_key = secrets.token_urlsafe(32)
        elif not secret_key:
            raise ConfigError(f"SECRET_KEY: required when APP_ENV is {app_env}")
        elif app_env != "development" and (
            len(secret_key) < _MIN_SECRET_LENGTH or secret_key.lower() in _PLACEHOLDER_SECRETS
        ):
            raise ConfigError(
                f"SECRET_KEY: must be a random value of at least {_MIN_SECRET_LENGTH} characters "
                f"when APP_ENV is {app_env}"
            )

        database_url = database_url_from(env)

        # A gevent worker's requests take turns on its one pooled connection (app/db.py): the work is
        # CPU-bound, so a bigger pool would only hold idle RDS connections and hide saturation from the
        # pool metrics (docs/capacity.md counts the budget).
        pool_min = env_int(env, "DB_POOL_MIN", 1, 0, 100)
        pool_max = env_int(env, "DB_POOL_MAX", 1, 1, 100)
        if pool_min > pool_max:
            raise ConfigError(f"DB_POOL_MIN: must not exceed DB_POOL_MAX ({pool_max}), got {pool_min}")

        page_size = env_int(env, "PAGE_SIZE", 20, 1, 100)
        api_max_limit = env_int(env, "API_MAX_LIMIT", 100, 1, 1000)

        fault_enabled = env_bool(env, "FAULT_INJECTION_ENABLED", False)
        fault_token = env.get("FAULT_INJECTION_TOKEN", "").strip()
        if fault_enabled:
            if app_env == "production":
                raise ConfigError("FAULT_INJECTION_ENABLED: must not be true when APP_ENV is production")
            if len(fault_token) < _MIN_TOKEN_LENGTH:
                raise ConfigError(
                    f"FAULT_INJECTION_TOKEN: required, at least {_MIN_TOKEN_LENGTH} characters, "
                    "when FAULT_INJECTION_ENABLED is true"
                )

        return cls(
            env=app_env,
            secret_key=secret_key,
            database_url=database_url,
            database_url_file=env.get("DATABASE_URL_FILE", "").strip() or None,
            db_pool_min=pool_min,
            db_pool_max=pool_max,
            db_statement_timeout_ms=env_int(env, "DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600_000),
            db_connect_timeout_s=env_int(env, "DB_CONNECT_TIMEOUT_S", 3, 1, 60),
            ready_timeout_ms=env_int(env, "READY_TIMEOUT_MS", 1000, 100, 10_000),
            max_body_bytes=env_int(env, "MAX_BODY_BYTES", 16 * 1024, 1024, 10 * 1024 * 1024),
            page_size=min(page_size, api_max_limit),
            api_max_limit=api_max_limit,
            proxy_hops=env_int(env, "PROXY_HOPS", 0, 0, 5),
            log_level=env_choice(env, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            # Off only to measure what instrumentation costs (make bench); every deployment keeps it on.
            metrics_enabled=env_bool(env, "METRICS_ENABLED", True),
            # Cookies only over HTTPS in production; a dev or test deployment behind HTTPS sets it too.
            session_cookie_secure=env_bool(env, "SESSION_COOKIE_SECURE", app_env == "production"),
            fault_injection_enabled=fault_enabled,
            fault_injection_token=fault_token if fault_enabled else "",
            fault_state_path=env_text(
                env, "FAULT_STATE_PATH", os.path.join(tempfile.gettempdir(), "taskboard-faults.json")
            ),
            build_version=env_text(env, "BUILD_VERSION", DEFAULT_BUILD_VERSION),
            build_commit=env_text(env, "BUILD_COMMIT", "unknown"),
        )
