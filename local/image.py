"""Build the service image with docker or podman: ``python -m local.image build [--offline]``.

Online, the Dockerfile's default base image is pulled from its registry. Offline (`make image-test`,
CI here: no registry is reachable), the base is made locally — a Debian 12 minbase root filesystem
with Python 3.11 from debootstrap, imported into podman — and the dependencies come from a wheelhouse
built on the host, so the build itself needs no network (``--network none``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".build" / "containers"  # podman storage and the debootstrap cache
DEBOOTSTRAP_CACHE = STATE / "debootstrap-cache"
WHEELS = ROOT / ".build" / "wheels"
DOCKERFILE = ROOT / "app" / "Dockerfile"
IMAGE = "localhost/taskboard"
OFFLINE_BASE = "localhost/taskboard-base:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

# Podman without a Docker engine on these machines (shared/ENVIRONMENT.md): runc with cgroupfs,
# host networking, and lower rlimits than the default (no CAP_SYS_RESOURCE here).
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class ImageError(RuntimeError):
    """A build step failed; the message says which."""


@dataclass(frozen=True)
class Engine:
    """docker or podman, with the flags every call needs."""

    binary: str
    flags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def is_podman(self) -> bool:
        return Path(self.binary).name == "podman"

    def command(self, *args: str) -> list[str]:
        return [self.binary, *self.flags, *args]

    def environment(self) -> dict[str, str]:
        """The environment every call of the engine runs in."""
        return {**os.environ, **dict(self.env)}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = self.environment()
        result = subprocess.run(  # noqa: S603 - the engine and its arguments are built here
            self.command(*args), env=env, text=True, capture_output=True, check=False
        )
        if check and result.returncode != 0:
            raise ImageError(f"{' '.join(self.command(*args)[:4])}… failed:\n{result.stdout}{result.stderr}")
        return result


def podman() -> Engine:
    """Podman with storage under .build/containers: --root/--runroot as flags (a storage.conf hangs runs)."""
    binary = shutil.which("podman")
    if binary is None:
        raise ImageError("podman not found: install the Debian package podman (make image-test does this)")
    STATE.mkdir(parents=True, exist_ok=True)
    conf = STATE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    flags = ("--root", str(STATE / "storage"), "--runroot", str(STATE / "run"))
    return Engine(binary, flags, (("CONTAINERS_CONF", str(conf)),))


def engine() -> Engine:
    """docker when a Docker engine answers, else podman."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0:  # noqa: S603
        return Engine(docker)
    return podman()


def has_image(eng: Engine, name: str) -> bool:
    return eng.run("image", "exists" if eng.is_podman else "inspect", name, check=False).returncode == 0


def ensure_offline_base(eng: Engine) -> str:
    """A Debian 12 base with python3 and venv for the image build, made once and kept in podman's store."""
    return ensure_debian_image(eng, OFFLINE_BASE, ("python3", "python3-venv", "ca-certificates"))


def ensure_debian_image(
    eng: Engine, name: str, packages: tuple[str, ...], *, files: Mapping[str, str] | None = None
) -> str:
    """``name``: a Debian 12 minbase with ``packages`` (and ``files`` written into it), made with debootstrap once.

    Every such image shares one cache of downloaded packages, so the second one costs no download.
    """
    if has_image(eng, name):
        return name
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ImageError("debootstrap not found: install the Debian package debootstrap")
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="taskboard-rootfs-") as rootfs:
        made = subprocess.run(  # noqa: S603
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(packages)}",
                f"--cache-dir={DEBOOTSTRAP_CACHE}",
                "bookworm",
                rootfs,
                DEBIAN_MIRROR,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise ImageError(f"debootstrap of {name} failed:\n{made.stdout[-2000:]}{made.stderr[-2000:]}")
        # Leave no package lists or caches in the image.
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for path in (Path(rootfs) / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        for relative, text in (files or {}).items():
            target = Path(rootfs) / relative.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        env = eng.environment()
        with subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE) as tar:  # noqa: S603,S607
            imported = subprocess.run(  # noqa: S603
                eng.command("import", "-", name), stdin=tar.stdout, env=env, capture_output=True, check=False
            )
        if imported.returncode != 0:
            raise ImageError(f"importing {name} failed: {imported.stderr.decode(errors='replace')}")
    return name


def build_wheelhouse() -> None:
    """Wheels for app/requirements.txt, built on the host (where PyPI is reachable)."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "wheel", "-q", "-r", str(ROOT / "app" / "requirements.txt"), "-w", str(WHEELS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ImageError(f"building the wheelhouse failed:\n{result.stdout}{result.stderr}")


def git_revision() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S607
    return result.stdout.strip() or "unknown"


def build(tag: str, *, offline: bool, version: str = "dev") -> tuple[Engine, str]:
    """Build ``IMAGE:tag``; return the engine used and the image reference."""
    if offline:
        eng = podman()
        base = ensure_offline_base(eng)
        build_wheelhouse()
        extra = ["--pull=never", "--network", "none", "--build-arg", f"BASE_IMAGE={base}"]
    else:
        eng = engine()
        extra = []
    reference = f"{IMAGE}:{tag}"
    args = ["build", *extra, "-f", str(DOCKERFILE), "-t", reference]
    if eng.is_podman:
        args += ["--format", "docker"]  # keeps HEALTHCHECK, which the OCI format drops
    args += ["--build-arg", f"VERSION={version}", "--build-arg", f"REVISION={git_revision()}", str(ROOT)]
    eng.run(*args)
    return eng, reference


def image_size(eng: Engine, reference: str) -> int:
    return int(eng.run("image", "inspect", "--format", "{{.Size}}", reference).stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.image", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--tag", default="dev")
    parser.add_argument("--offline", action="store_true", help="local Debian base and wheelhouse; no registry")
    args = parser.parse_args(argv)
    try:
        eng, reference = build(args.tag, offline=args.offline)
    except (ImageError, subprocess.CalledProcessError) as exc:
        print(f"make image: {exc}", file=sys.stderr)
        return 1
    size = image_size(eng, reference)
    print(f"built {reference} with {Path(eng.binary).name}: {size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
