"""Password rotation: with DATABASE_URL_FILE, new credentials reach new connections without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from app import create_app, endpoints
from app.migrate import upgrade
from local.postgres import EmbeddedPostgres
from tests.conftest import TEST_SECRET, free_port

API = endpoints.API_PREFIX


@pytest.fixture
def password_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A server where the role `app` must log in with a password (the superuser stays trusted)."""
    pg = EmbeddedPostgres(tmp_path / "pg", free_port())
    pg.start()
    (pg.data_dir / "pg_hba.conf").write_text(
        "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all app 127.0.0.1/32 scram-sha-256\n"
    )
    pg.reload()
    admin = psycopg2.connect(pg.url())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE ROLE app LOGIN PASSWORD 'first-password'")
        cur.execute("CREATE DATABASE board OWNER app")
    admin.close()
    yield pg
    pg.remove()


def _url(pg: EmbeddedPostgres, password: str) -> str:
    return f"postgresql://app:{password}@127.0.0.1:{pg.port}/board"


def test_rotated_password_is_picked_up_from_the_file(
    password_postgres: EmbeddedPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pg = password_postgres
    upgrade(_url(pg, "first-password"))
    url_file = tmp_path / "database-url"
    url_file.write_text(_url(pg, "first-password"))
    config = {"APP_ENV": "test", "SECRET_KEY": TEST_SECRET, "DATABASE_URL_FILE": str(url_file), "DB_POOL_MIN": "1"}
    app = create_app(config)
    client = app.test_client()
    assert client.post(f"{API}/tasks", json={"title": "before rotation"}).status_code == 201
    assert client.get(endpoints.READYZ).status_code == 200

    # RDS rotates the password: sessions already open survive, new logins with the old one fail.
    admin = psycopg2.connect(pg.url())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("ALTER ROLE app PASSWORD 'second-password'")
    admin.close()
    assert client.get(f"{API}/stats").status_code == 200  # the pooled session still works
    # New logins fail, but this pod still serves on its open session: it stays ready (every pod
    # turning unready at once would take the service out of the load balancer).
    degraded = client.get(endpoints.READYZ)
    assert degraded.status_code == 200
    assert degraded.get_json()["warning"] == "new database logins refused; serving on open connections"
    # A pod with no open session cannot serve: it is not ready, and says why.
    cold = create_app({**config, "DB_POOL_MIN": "0"})
    stale = cold.test_client().get(endpoints.READYZ)
    assert stale.status_code == 503
    assert stale.get_json()["reason"] == "database login refused"
    cold.extensions["db"].close()
    # PostgreSQL's words go to the log only, and once per change of what readiness found.
    logged = capsys.readouterr().out
    assert "password authentication failed" not in degraded.get_data(as_text=True) + stale.get_data(as_text=True)
    assert logged.count("readiness: database login refused: ") == 1
    assert "password authentication failed" in logged

    # External Secrets refreshes the Secret and the kubelet updates the mounted file.
    url_file.write_text(_url(pg, "second-password"))
    assert client.get(endpoints.READYZ).status_code == 200
    assert client.post(f"{API}/tasks", json={"title": "after rotation"}).status_code == 201
    assert app.extensions["db"]._pool_url == _url(pg, "second-password")
    app.extensions["db"].close()
