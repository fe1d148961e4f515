"""`make fresh-check`: it can fail where a pristine machine would, and says which step broke.

The mutant test is the proof the issue asks for: a tree that assumes the system user of an earlier
run passes every check on a machine that has it, and fresh-check must fail it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import container, fresh, registries
from local.image import podman
from local.stack import PG_PORT
from tests.conftest import ROOT
from tests.tiers import slow_fixture

needs_podman = pytest.mark.skipif(bool(os.environ.get(fresh.IN_FRESH_CHECK)), reason=fresh.NESTED_PODMAN)


def _fresh(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.fresh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_host_settings_carry_the_ca_and_pip_settings_and_mount_what_they_name(tmp_path: Path) -> None:
    ca = tmp_path / "proxy-ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    index = tmp_path / "pypi"
    (index / "simple").mkdir(parents=True)
    (index / "files").mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nextra-index-url = file://{index / 'simple'}\ntimeout = 99\n")
    environ = {"PATH": os.environ["PATH"], "SSL_CERT_FILE": str(ca), "PIP_CONFIG_FILE": str(conf), "HOME": "/x"}

    settings = registries.host_settings(environ)

    assert settings.env["PIP_EXTRA_INDEX_URL"] == f"file://{index / 'simple'}"
    assert settings.env["PIP_TIMEOUT"] == "99"
    for variable in registries.CA_VARIABLES:
        assert settings.env[variable] == registries.CONTAINER_CA
    mounts = dict(settings.mounts)
    assert mounts[str(ca)] == registries.CONTAINER_CA
    assert mounts[str(index)] == str(index), "the index's files/ must come along with simple/"
    assert mounts[str(conf)] == str(conf)


def test_a_port_taken_on_the_host_is_exit_2_naming_it() -> None:
    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", PG_PORT))
            busy.listen()
        except OSError:
            pass  # taken already: the same refusal is expected
        result = _fresh("--part", "run", timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"PG_PORT {PG_PORT}" in result.stderr and "FAILED at 'ports'" in result.stderr


@pytest.fixture(scope="module")
@slow_fixture("builds a pristine Debian image with debootstrap and podman")
def box() -> Iterator[container.Container]:
    if os.environ.get(fresh.IN_FRESH_CHECK):
        pytest.skip(fresh.NESTED_PODMAN)
    eng = podman()
    container.ensure_fresh_image(eng)
    box = container.Container.start(eng, registries.HostSettings(), {}, repo=ROOT, commit="HEAD")
    yield box
    box.remove()


def test_the_container_is_pristine_and_a_leftover_user_is_caught(box: container.Container) -> None:
    assert box.sh(f"stat -c %a /root && git -C {container.CLONE} rev-parse HEAD", step="t").stdout.split()[0] == "700"
    box.prove_pristine()
    box.sh("useradd --system embedded_postgres", step="t")
    try:
        with pytest.raises(container.StepFailed, match="no-user") as failed:
            box.prove_pristine()
        assert failed.value.code == 2
    finally:
        box.sh("userdel embedded_postgres", step="t")


def test_a_process_left_after_ctrl_c_is_found(box: container.Container) -> None:
    assert box.processes() == []
    box.sh("setsid sleep 600 < /dev/null > /dev/null 2>&1 &", step="t")
    left = [line for line in box.processes() if line.endswith(" sleep 600")]
    for line in left:
        box.sh(f"kill {line.split()[0]}", step="t")
    assert len(left) == 1, left


@pytest.mark.slow  # podman and debootstrap
@needs_podman
def test_fresh_check_fails_a_tree_that_assumes_the_system_user_exists(tmp_path: Path) -> None:
    """The bug that once passed every check: the system user taken for granted, as an earlier run left it."""
    mutant = tmp_path / "mutant"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(mutant)], check=True)
    source = mutant / "local" / "postgres.py"
    text = source.read_text()
    marker = "    try:\n        return pwd.getpwnam(name)\n    except KeyError:\n        pass\n"
    assert marker in text, "ensure_system_user changed: update this mutation"
    source.write_text(text.replace(marker, "    return pwd.getpwnam(name)  # an earlier run made it\n"))
    git = ["git", "-C", str(mutant), "-c", "user.name=test", "-c", "user.email=test@localhost"]
    subprocess.run([*git, "commit", "-qam", "assume the system user exists"], check=True)

    result = _fresh("--part", "run", "--repo", str(mutant), "--report", str(tmp_path / "report"))

    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    assert "FAILED at 'cold make run'" in result.stderr
    assert "getpwnam(): name not found: 'embedded_postgres'" in result.stderr
