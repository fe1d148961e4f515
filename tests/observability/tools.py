"""The real tools the tests run: found on PATH or the test fails naming the package that provides them."""

from __future__ import annotations

import shutil


def binary(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} not found: install the Debian package {package} (`make test` does)"
    return path


def promtool() -> str:
    return binary("promtool", "prometheus")


def amtool() -> str:
    return binary("amtool", "prometheus-alertmanager")
