"""docs/architecture/architecture.png is what docs/architecture/diagram.py draws, and the drawing knows
every add-on infra/addons installs.

The PNG is compared byte for byte: with the node ids fixed and the font named, Graphviz's PNG output is
the same on every run and checkout (tried across two checkouts here), so no Graphviz source is kept.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.terraform import stack

ROOT = Path(__file__).resolve().parent.parent.parent
FOLDER = ROOT / "docs" / "architecture"
SCRIPT = FOLDER / "diagram.py"
PNG = FOLDER / "architecture.png"


@functools.cache
def _diagram_module() -> Any:
    """docs/architecture/diagram.py as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("architecture_diagram", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # Graphviz's dot: Debian package graphviz
def test_the_committed_png_is_what_the_script_draws(tmp_path: Path) -> None:
    assert shutil.which("dot"), "Graphviz's dot not found: install the Debian package graphviz (`make test` does)"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    drawn = (tmp_path / "architecture.png").read_bytes()
    assert drawn[:8] == b"\x89PNG\r\n\x1a\n" and len(drawn) > 100_000, "not a full drawing"
    assert drawn == PNG.read_bytes(), (
        "docs/architecture/architecture.png is stale: run `.venv/bin/python docs/architecture/diagram.py` and commit it"
    )


def test_every_addon_infra_installs_is_drawn_and_nothing_else() -> None:
    charts = {Path(str(body["chart"])).name for body in stack("addons").resources_of("helm_release").values()}
    drawn = set(_diagram_module().ADDONS)
    assert drawn == charts, f"drawn but not installed: {drawn - charts}; installed but not drawn: {charts - drawn}"


def test_every_namespace_the_drawing_uses_is_a_namespace_of_cluster_yaml() -> None:
    names = yaml.safe_load((ROOT / "infra" / "cluster.yaml").read_text())
    module = _diagram_module()
    for addon in [*module.ADDONS.values(), *module.STACK_PARTS.values()]:
        assert "namespace" in names[addon.namespace_key], addon
