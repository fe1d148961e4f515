"""The embedded PostgreSQL's lifecycle assumes nothing an earlier run left behind.

A fresh machine has no system user and may keep the clone in a 0700 home: every call, in any order,
must work there, and none may open the caller's folders to another user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from local.postgres import EmbeddedPostgres, PostgresError
from tests.conftest import free_port

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can create system users; as another user postgres runs as the caller"
)


@pytest.fixture
def new_system_user() -> Iterator[str]:
    """A user name that does not exist yet; whatever the test creates under it is removed afterwards."""
    name = f"tbpg{uuid.uuid4().hex[:10]}"
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    yield name
    subprocess.run(["userdel", name], capture_output=True, check=False)


@pytest.fixture
def runtime_root() -> Iterator[Path]:
    """A runtime folder that does not exist yet, in a parent other users may traverse (as /var/lib is)."""
    path = Path("/tmp") / f"taskboard-pg-runtime-{uuid.uuid4().hex[:10]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _closed_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o700)
    return home


def _modes(path: Path) -> dict[Path, int]:
    return {folder: stat.S_IMODE(folder.stat().st_mode) for folder in (path, *path.parents)}


def _postmaster(pg: EmbeddedPostgres) -> dict[str, str]:
    pid = (pg.data_dir / "postmaster.pid").read_text().splitlines()[0]
    fields = (Path("/proc") / pid / "status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in fields)}


@as_root
def test_lifecycle_with_no_system_user_yet_and_a_0700_home(
    tmp_path: Path, new_system_user: str, runtime_root: Path
) -> None:
    home = _closed_home(tmp_path)
    requested = home / "taskboard" / ".local" / "pgdata"
    before = _modes(home)
    pg = EmbeddedPostgres(requested, free_port(), system_user=new_system_user, runtime_root=runtime_root)

    # The first question a stack asks, before anything exists: an answer, and nothing created.
    assert pg.running() is False
    with pytest.raises(KeyError):
        pwd.getpwnam(new_system_user)
    assert not runtime_root.exists()

    pg.start()
    try:
        user = pwd.getpwnam(new_system_user)
        assert pg.running() is True
        assert pg.data_dir.is_relative_to(runtime_root) and not requested.exists()
        assert pg.data_dir.stat().st_uid == user.pw_uid
        assert (pg.home / "requested-by").read_text().strip() == str(requested.resolve())
        postmaster = _postmaster(pg)
        assert postmaster["Uid"].split()[0] == str(user.pw_uid)
        assert postmaster["Groups"] == "", "postgres kept root's supplementary groups"
        conn = psycopg2.connect(pg.url(), connect_timeout=5)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE kept (note text)")
            cur.execute("INSERT INTO kept VALUES ('across restarts')")
        conn.close()
    finally:
        pg.stop()
    assert pg.running() is False

    # A new handle for the same folder (the next `make run`) finds the same cluster and its data.
    again = EmbeddedPostgres(requested, free_port(), system_user=new_system_user, runtime_root=runtime_root)
    again.start()
    try:
        conn = psycopg2.connect(again.url(), connect_timeout=5)
        with conn, conn.cursor() as cur:
            cur.execute("SELECT note FROM kept")
            assert cur.fetchall() == [("across restarts",)]
        conn.close()
    finally:
        again.remove()
    assert not again.home.exists()
    assert _modes(home) == before, "a folder of the caller's was opened to other users"


@as_root
def test_a_cluster_outlives_its_system_user_being_recreated(
    tmp_path: Path, new_system_user: str, runtime_root: Path
) -> None:
    requested = _closed_home(tmp_path) / "pgdata"
    pg = EmbeddedPostgres(requested, free_port(), system_user=new_system_user, runtime_root=runtime_root)
    pg.start()
    pg.stop()
    old_uid = pwd.getpwnam(new_system_user).pw_uid
    subprocess.run(["userdel", new_system_user], check=True)
    # Another system user takes the old uid, so the recreated one gets a new uid.
    squatter = f"tbsq{uuid.uuid4().hex[:10]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--uid", str(old_uid), squatter], check=True)
    try:
        again = EmbeddedPostgres(requested, free_port(), system_user=new_system_user, runtime_root=runtime_root)
        again.start()
        try:
            assert pwd.getpwnam(new_system_user).pw_uid != old_uid
            assert again.running()
        finally:
            again.remove()
    finally:
        subprocess.run(["userdel", squatter], check=False)


@as_root
def test_a_runtime_root_others_cannot_reach_is_refused_and_nothing_is_made(
    tmp_path: Path, new_system_user: str
) -> None:
    closed = _closed_home(tmp_path)
    pg = EmbeddedPostgres(tmp_path / "pgdata", free_port(), system_user=new_system_user, runtime_root=closed / "pg")
    with pytest.raises(PostgresError, match=rf"{closed} is closed to other users \(mode 700\)"):
        pg.start()
    with pytest.raises(KeyError):
        pwd.getpwnam(new_system_user)
    assert not (closed / "pg").exists()
