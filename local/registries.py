"""How this host reaches the package registries, handed read-only to a pristine container.

A container made by debootstrap trusts no CA and knows no pip settings; on a machine whose registry
traffic goes through a proxy with its own CA, or through local indexes, it would reach nothing. So
the host's CA bundle, its pip settings (as PIP_* variables, plus read-only mounts of the local
folders they name) and its apt access settings go in — read from the host at run time, never copied
into the repository. On a machine with none of these, nothing is added.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Where the host's CA bundle appears in the container: beside, not over, what the ca-certificates
# package would manage (its postinst rewrites /etc/ssl/certs and fails on a read-only file there).
CONTAINER_CA = "/etc/host-registries/ca-certificates.crt"
# The variables HTTPS clients read a CA bundle from (pip, requests, curl, git, OpenSSL).
CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO")
DEFAULT_CA = Path("/etc/ssl/certs/ca-certificates.crt")
APT_CONF = Path("/etc/apt/apt.conf.d")
APT_AUTH = Path("/etc/apt/auth.conf.d")


@dataclass(frozen=True)
class HostSettings:
    """Environment variables and read-only mounts (host path, container path) for a container."""

    env: dict[str, str] = field(default_factory=dict)
    mounts: tuple[tuple[str, str], ...] = ()


def host_ca(environ: Mapping[str, str]) -> Path | None:
    """The CA bundle the host's HTTPS clients use: the first one a variable names, else Debian's."""
    for variable in CA_VARIABLES:
        value = environ.get(variable)
        if value and Path(value).is_file():
            return Path(value)
    return DEFAULT_CA if DEFAULT_CA.is_file() else None


def pip_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """pip's effective settings from every configuration file, as the PIP_* variables that mean the same."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=dict(environ),
        capture_output=True,
        text=True,
        check=False,
    )
    settings: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        # global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
        match = re.fullmatch(r"(?:global|install)\.([\w-]+)='(.*)'", line.strip())
        if match:
            settings["PIP_" + match.group(1).upper().replace("-", "_")] = match.group(2)
    settings.update({k: v for k, v in environ.items() if k.startswith("PIP_")})
    return settings


def _local_paths(value: str) -> list[Path]:
    """The existing host paths a setting names: absolute paths and file:// URLs, in a space-separated list."""
    paths = []
    for word in value.split():
        path = Path(word.removeprefix("file://"))
        if path.is_absolute() and path.exists():
            paths.append(path)
    return paths


def host_settings(environ: Mapping[str, str] | None = None) -> HostSettings:
    """What a container needs to reach the registries this host reaches."""
    environ = os.environ if environ is None else environ
    env = pip_settings(environ)
    mounts: dict[str, str] = {}
    ca = host_ca(environ)
    for variable in CA_VARIABLES:
        env.pop(variable, None)
    if ca is not None:
        mounts[str(ca)] = CONTAINER_CA
        env.update(dict.fromkeys(CA_VARIABLES, CONTAINER_CA))
    for value in env.values():
        for path in _local_paths(value):
            # A PEP 503 index folder links to its files beside `simple/`: mount the whole index.
            folder = path.parent if path.name == "simple" else path
            mounts.setdefault(str(folder), str(folder))
    # apt: how the host reaches its mirrors (Acquire:: proxies, validity checks, TLS; credentials),
    # not its hooks or what it installed.
    for path in sorted(APT_CONF.glob("*")) if APT_CONF.is_dir() else []:
        if path.is_file() and "Acquire::" in path.read_text(errors="replace"):
            mounts[str(path)] = str(path)
    for path in sorted(APT_AUTH.glob("*")) if APT_AUTH.is_dir() else []:
        if path.is_file():
            mounts[str(path)] = str(path)
    return HostSettings(env=env, mounts=tuple(mounts.items()))
