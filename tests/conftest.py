"""Fixtures shared by every test folder: a real PostgreSQL, migrated databases, apps and servers.

PostgreSQL is the embedded one (a private cluster on a free port, for this session only) unless
DATABASE_URL names another server, on which the tests create and drop their own databases.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.migrate import upgrade
from local.postgres import EmbeddedPostgres
from local.stack import Stack, StackSettings, free_port
from tests.tiers import (  # noqa: F401 - pytest finds the tiers' hooks by their names in this module
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_makereport,
    pytest_runtest_protocol,
    pytest_unconfigure,
    slow_fixture,
)

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
FAULT_TOKEN = "drill-token-0123456789abcdef"


class PostgresServer:
    """A server the tests may create databases on; ``embedded`` is set when we run it ourselves."""

    def __init__(self, admin_url: str, embedded: EmbeddedPostgres | None) -> None:
        self.admin_url = admin_url
        self.embedded = embedded
        self._created: list[str] = []

    def url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def create_database(self, prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = psycopg2.connect(self.admin_url, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        self._created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        conn = psycopg2.connect(self.admin_url, connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for name in self._created:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    external = os.environ.get("DATABASE_URL")
    if external:
        server = PostgresServer(external, None)
        yield server
        server.drop_all()
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", free_port())
    embedded.start()
    server = PostgresServer(embedded.url(), embedded)
    try:
        yield server
    finally:
        embedded.remove()


@pytest.fixture(scope="session")
def migrated_database(pg_server: PostgresServer) -> Callable[[], str]:
    """Make a new, migrated, empty database and return its URL."""

    def make() -> str:
        url = pg_server.create_database()
        upgrade(url)
        return url

    return make


@pytest.fixture(scope="session")
def database_url(migrated_database: Callable[[], str]) -> str:
    """The session's migrated database, shared by in-process tests (emptied before each)."""
    return migrated_database()


def app_config(database_url: str, **overrides: str) -> dict[str, str]:
    """Environment-style settings for a test app."""
    config = {
        "APP_ENV": "test",
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
    }
    config.update(overrides)
    return config


def execute(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on its own connection; return its rows (if any)."""
    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


@pytest.fixture
def empty_database(database_url: str) -> str:
    execute(database_url, "TRUNCATE tasks RESTART IDENTITY")
    return database_url


@pytest.fixture
def make_app(empty_database: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on the emptied session database; close their pools afterwards."""
    apps: list[Flask] = []

    def make(**overrides: str) -> Flask:
        app = create_app(app_config(empty_database, **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["db"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, so stopping it harms no other test."""
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    yield pg
    pg.remove()


def table_snapshot(url: str) -> list[tuple[Any, ...]]:
    """Every row of tasks, in id order: compare before and after a refused request."""
    return execute(url, "SELECT id, title, status, created_at, updated_at FROM tasks ORDER BY id")


@pytest.fixture
@slow_fixture("starts the app under gunicorn")
def served_app(tmp_path: Path, migrated_database: Callable[[], str]) -> Iterator[Callable[..., Stack]]:
    """Start the app under gunicorn (production config file) on a free port, on its own database."""
    stacks: list[Stack] = []

    def start(*, workers: int = 2, database_url: str | None = None, **env: str) -> Stack:
        url = database_url or migrated_database()
        settings = StackSettings(
            state_dir=tmp_path / f"stack-{len(stacks)}",
            app_port=free_port(),
            database_url=url,
            workers=workers,
            seed=False,
            fault_injection=False,  # tests that drill turn it on through FAULT_INJECTION_* themselves
            app_env={"APP_ENV": "test", "SECRET_KEY": TEST_SECRET, **env},
        )
        settings.state_dir.mkdir(parents=True)
        stack = Stack(settings)
        stacks.append(stack)
        stack.start_app(log_to_terminal=False)
        return stack

    yield start
    for stack in stacks:
        stack.stop()
