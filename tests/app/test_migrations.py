"""Migrations and seed data: from empty, idempotent, safe when two copies run at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg2
import pytest

from app.migrate import MIGRATION_LOCK_KEY
from app.seed import SAMPLE_TASKS
from app.tasks import STATUSES, TITLE_MAX_LENGTH
from tests.conftest import ROOT, PostgresServer, execute


def command(module: str, url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", module], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen[str], timeout: float = 60) -> str:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return out


def tables(url: str) -> set[str]:
    rows = execute(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


def test_migrate_from_empty_then_again_changes_nothing(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("mig")
    assert tables(url) == set()

    finish(command("app.migrate", url))
    assert tables(url) == {"tasks", "alembic_version"}
    version = execute(url, "SELECT version_num FROM alembic_version")

    out = finish(command("app.migrate", url))
    assert "Running upgrade" not in out
    assert execute(url, "SELECT version_num FROM alembic_version") == version


def test_parallel_migrations_apply_each_revision_once(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("mig")
    runs = [command("app.migrate", url) for _ in range(4)]
    outputs = [finish(run) for run in runs]
    assert sum(out.count("Running upgrade  -> 0001") for out in outputs) == 1
    assert execute(url, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_migration_waits_for_the_advisory_lock(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("mig")
    holder = psycopg2.connect(url)
    holder.autocommit = True
    with holder.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    run = command("app.migrate", url)
    try:
        time.sleep(3)  # long enough for an unguarded run to have finished (it takes ~1.5 s)
        assert run.poll() is None, "migrate did not wait for the lock"
        assert "tasks" not in tables(url)
    finally:
        holder.close()  # releases the lock
    finish(run)
    assert "tasks" in tables(url)


def test_migrate_refuses_without_database_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "app.migrate"], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "DATABASE_URL: required" in result.stdout


def test_schema_agrees_with_the_code(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    execute(url, "INSERT INTO tasks (title) VALUES (%s)", ("x" * TITLE_MAX_LENGTH,))
    for status in STATUSES:
        execute(url, "INSERT INTO tasks (title, status) VALUES ('s', %s)", (status,))
    with pytest.raises(psycopg2.errors.CheckViolation):
        execute(url, "INSERT INTO tasks (title) VALUES (%s)", ("x" * (TITLE_MAX_LENGTH + 1),))
    with pytest.raises(psycopg2.errors.CheckViolation):
        execute(url, "INSERT INTO tasks (title, status) VALUES ('s', 'archived')")
    with pytest.raises(psycopg2.errors.CheckViolation):
        execute(url, "INSERT INTO tasks (title) VALUES ('')")


def test_migrations_are_forward_only() -> None:
    from app.migrate import MIGRATIONS

    for revision in (MIGRATIONS / "versions").glob("*.py"):
        source = revision.read_text()
        assert 'raise NotImplementedError("migrations are forward-only' in source, revision.name


def test_seed_is_idempotent_even_in_parallel(migrated_database: Callable[[], str]) -> None:
    url = migrated_database()
    finish(command("app.seed", url))
    assert execute(url, "SELECT count(*) FROM tasks") == [(len(SAMPLE_TASKS),)]
    runs = [command("app.seed", url) for _ in range(3)]
    for run in runs:
        finish(run)
    assert execute(url, "SELECT count(*) FROM tasks") == [(len(SAMPLE_TASKS),)]
