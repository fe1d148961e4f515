"""A pristine Debian 12 in a podman container, and `make run` inside it as a user runs it: the machine
`make fresh-check` (local/fresh.py) proves the README on.

The image is debootstrap's minbase plus git, make and python3 and the apt sources Debian's installer
writes, nothing else; :meth:`Container.prove_pristine` checks that before every use, so a base that
drifts cannot pass for a new machine.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from local import registries
from local.image import Engine, ImageError, ensure_debian_image

FRESH_IMAGE = "localhost/taskboard-fresh:bookworm"
PACKAGES = ("git", "make", "python3")  # a fresh Debian 12 plus what the README asks for first
# What Debian's installer writes; debootstrap alone lists only the release itself.
DEBIAN_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
CLONE = "/root/taskboard"  # /root is 0700 (Debian's base-files): a closed home, as the issue asks
SOURCE = "/src/taskboard.git"


class StepFailed(Exception):
    """A README step failed on the pristine machine (code 1), or the check could not run (code 2)."""

    def __init__(self, step: str, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.step = step
        self.code = code


def ensure_fresh_image(eng: Engine) -> str:
    """The pristine image, made once: debootstrap's minbase, PACKAGES, and the installer's apt sources."""
    sources = {"etc/apt/sources.list": "", "etc/apt/sources.list.d/debian.sources": DEBIAN_SOURCES}
    return ensure_debian_image(eng, FRESH_IMAGE, PACKAGES, files=sources)


# -- the container -------------------------------------------------------------------------------


class Container:
    """A pristine container that runs an init and a sleep until removed; steps run in it with `exec`."""

    def __init__(self, eng: Engine, name: str) -> None:
        self.eng = eng
        self.name = name

    @classmethod
    def start(
        cls, eng: Engine, host: registries.HostSettings, env: dict[str, str], *, repo: Path, commit: str
    ) -> Container:
        name = f"taskboard-fresh-{uuid.uuid4().hex[:8]}"
        mounts = [arg for source, target in host.mounts for arg in ("-v", f"{source}:{target}:ro")]
        variables = [arg for key, value in {**host.env, **env}.items() for arg in ("-e", f"{key}={value}")]
        try:
            eng.run(
                "run", "-d", "--init", "--name", name, "--network", "host", "-w", "/root",
                "-v", f"{repo / '.git'}:{SOURCE}:ro", *mounts, *variables, FRESH_IMAGE, "sleep", "infinity",
            )  # fmt: skip
        except ImageError as exc:
            raise StepFailed("start a pristine container", str(exc), code=2) from exc
        box = cls(eng, name)
        box.prove_pristine()
        box.sh(f"git clone -q {SOURCE} {CLONE} && git -C {CLONE} checkout -q --detach {commit}", step="clone")
        return box

    def sh(
        self, script: str, *, step: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(  # noqa: S603 - podman and a script built here
                self.eng.command("exec", self.name, "bash", "-c", script),
                env=self.eng.environment(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StepFailed(step, f"`{script}` did not finish in {timeout:.0f} s", code=2) from exc
        if check and result.returncode != 0:
            raise StepFailed(step, f"`{script}` exited {result.returncode}: {result.stderr[-1500:]}", code=2)
        return result

    def prove_pristine(self) -> None:
        """What makes the machine new, checked, so that a base which drifts cannot pass for one."""
        facts = self.sh(
            "stat -c %a /root; id -u embedded_postgres 2>/dev/null || echo no-user; "
            "python3 -c 'import sys; print(sys.executable, sys.version_info >= (3, 11))'; "
            "python3 -c 'import ensurepip' 2>/dev/null && echo venv || echo no-venv; "
            "command -v prometheus || echo no-prometheus; "
            "test -e /var/lib/embedded_postgres && echo runtime || echo no-runtime",
            step="pristine container",
        ).stdout.split()
        expected = ["700", "no-user", "/usr/bin/python3", "True", "no-venv", "no-prometheus", "no-runtime"]
        if facts != expected:
            raise StepFailed("pristine container", f"expected {expected}, found {facts}", code=2)

    def processes(self) -> list[str]:
        """Every process but the container's init, its sleep and this probe: what a stop left running."""
        probe = (
            "import os\n"
            "me = os.getpid()\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try:\n"
            "        stat = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()\n"
            "        cmd = open(f'/proc/{pid}/cmdline').read().replace(chr(0), ' ').strip()\n"
            "    except OSError:\n"
            "        continue\n"
            "    if int(pid) in (1, me) or stat[0] == 'Z' or cmd == 'sleep infinity':\n"
            "        continue\n"
            "    print(pid, cmd)\n"
        )
        result = self.sh(f"python3 -c {_quote(probe)}", step="list processes")
        return [line for line in result.stdout.splitlines() if line.strip()]

    def size(self) -> int:
        return int(self.eng.run("container", "inspect", "--size", "--format", "{{.SizeRw}}", self.name).stdout)

    def remove(self) -> None:
        self.eng.run("rm", "-f", "-t", "5", self.name, check=False)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# -- `make run`, as a user runs it ---------------------------------------------------------------


class MakeRun:
    """`make run` in its own session inside the container; stopped as Ctrl-C stops it."""

    def __init__(self, box: Container, label: str) -> None:
        self.box = box
        self.log = f"/root/make-run-{label}.log"
        self.rc = f"/root/make-run-{label}.rc"
        self.pgid = f"/root/make-run-{label}.pgid"
        # setsid: make, its shell and the stack share one process group, as in a terminal. `trap :`
        # lets this shell outlive the interrupt to record make's status (a handler, unlike an ignored
        # signal, is not inherited).
        session = f"echo $$ > {self.pgid}; trap : INT; cd {CLONE}; make run > {self.log} 2>&1; echo $? > {self.rc}"
        box.sh(f"setsid bash -c {_quote(session)} < /dev/null > /dev/null 2>&1 &", step="start make run")

    def exited(self) -> int | None:
        out = self.box.sh(f"cat {self.rc} 2>/dev/null || true", step="make run status").stdout.strip()
        return int(out) if out else None

    def output(self) -> str:
        return self.box.sh(f"cat {self.log} 2>/dev/null || true", step="make run log").stdout

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def interrupt(self) -> None:
        self.box.sh(f"kill -INT -- -$(cat {self.pgid})", step="Ctrl-C")
