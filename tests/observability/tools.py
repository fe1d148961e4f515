"""The real tools the tests run: found on PATH or the test fails naming the package that provides them."""

from __future__ import annotations

from tests.tools import debian_tool


def promtool() -> str:
    return debian_tool("promtool", "prometheus")


def amtool() -> str:
    return debian_tool("amtool", "prometheus-alertmanager")
