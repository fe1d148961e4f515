"""Settings: read from the environment once, refused with a message that names the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import create_app
from app.config import ConfigError, Settings, redact_url

GOOD = {
    "APP_ENV": "production",
    "SECRET_KEY": "k" * 40,
    "DATABASE_URL": "postgresql://svc:pw@db.internal:5432/taskboard",
}


def settings(**changes: str) -> Settings:
    env = {**GOOD, **changes}
    return Settings.from_env({k: v for k, v in env.items() if v != "<unset>"})


def test_defaults_are_production_safe() -> None:
    s = settings()
    assert s.env == "production"
    assert s.fault_injection_enabled is False
    assert s.db_statement_timeout_ms == 5000
    assert s.proxy_hops == 0


@pytest.mark.parametrize(
    "changes, variable",
    [
        ({"DATABASE_URL": "<unset>"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"SECRET_KEY": "<unset>"}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY"),
        ({"APP_ENV": "staging"}, "APP_ENV"),
        ({"DB_POOL_MAX": "lots"}, "DB_POOL_MAX"),
        ({"DB_POOL_MAX": "0"}, "DB_POOL_MAX"),
        ({"DB_POOL_MIN": "5", "DB_POOL_MAX": "2"}, "DB_POOL_MIN"),
        ({"DB_STATEMENT_TIMEOUT_MS": "10"}, "DB_STATEMENT_TIMEOUT_MS"),
        ({"MAX_BODY_BYTES": "1e6"}, "MAX_BODY_BYTES"),
        ({"PROXY_HOPS": "9"}, "PROXY_HOPS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"FAULT_INJECTION_ENABLED": "maybe"}, "FAULT_INJECTION_ENABLED"),
        # Fault injection never runs in production, and needs a real token elsewhere.
        ({"FAULT_INJECTION_ENABLED": "true", "FAULT_INJECTION_TOKEN": "t" * 32}, "FAULT_INJECTION_ENABLED"),
        ({"APP_ENV": "test", "FAULT_INJECTION_ENABLED": "true"}, "FAULT_INJECTION_TOKEN"),
        (
            {"APP_ENV": "test", "FAULT_INJECTION_ENABLED": "1", "FAULT_INJECTION_TOKEN": "short"},
            "FAULT_INJECTION_TOKEN",
        ),
    ],
)
def test_bad_settings_name_the_variable(changes: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(**changes)
    assert str(info.value).startswith(f"{variable}:")


def test_the_secret_never_appears_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        settings(SECRET_KEY="hunter2-is-my-password")
    assert "hunter2" not in str(info.value)


def test_development_makes_up_a_secret_when_none_is_given() -> None:
    a = settings(APP_ENV="development", SECRET_KEY="<unset>")
    b = settings(APP_ENV="development", SECRET_KEY="<unset>")
    assert len(a.secret_key) >= 32
    assert a.secret_key != b.secret_key


def test_create_app_refuses_bad_settings_before_doing_anything() -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL:"):
        create_app({"APP_ENV": "test", "SECRET_KEY": "k" * 40})


def test_create_app_does_not_connect() -> None:
    # Nothing listens on port 1: building the app must still succeed, since it opens no connection.
    app = create_app({**GOOD, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert app.extensions["db"]._pool is None


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://svc:s3cr%40t@db:5432/x?sslmode=require") == (
        "postgresql://svc:***@db:5432/x?sslmode=require"
    )
    assert redact_url("postgresql://svc@db/x") == "postgresql://svc@db/x"


def test_database_url_can_come_from_a_file(tmp_path: Path) -> None:
    url_file = tmp_path / "url"
    url_file.write_text("postgresql://svc:rotated@db:5432/taskboard\n")
    s = settings(DATABASE_URL="<unset>", DATABASE_URL_FILE=str(url_file))
    assert s.database_url == "postgresql://svc:rotated@db:5432/taskboard"
    assert s.database_url_file == str(url_file)


@pytest.mark.parametrize(
    "content, message",
    [(None, "cannot read"), ("", "is empty"), ("mysql://x/y", "must hold a postgresql:// URL")],
)
def test_a_bad_database_url_file_is_named(tmp_path: Path, content: str | None, message: str) -> None:
    url_file = tmp_path / "url"
    if content is not None:
        url_file.write_text(content)
    with pytest.raises(ConfigError, match=rf"^DATABASE_URL_FILE: .*{message}"):
        settings(DATABASE_URL="<unset>", DATABASE_URL_FILE=str(url_file))


def test_database_url_and_its_file_are_exclusive(tmp_path: Path) -> None:
    (tmp_path / "url").write_text("postgresql://a@b/c")
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: set either"):
        settings(DATABASE_URL_FILE=str(tmp_path / "url"))


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GUNICORN_WORKERS", "two", "GUNICORN_WORKERS: must be an integer, got 'two'"),
        ("PORT", "70000", "PORT: must be between 1 and 65535, got 70000"),
    ],
)
def test_gunicorn_config_refuses_a_bad_value_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    import runpy

    from tests.conftest import ROOT

    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", os.environ.get("PROMETHEUS_MULTIPROC_DIR", "/tmp/unused"))
    with pytest.raises(ConfigError) as info:
        runpy.run_path(str(ROOT / "app" / "gunicorn.conf.py"))
    assert str(info.value) == message
