"""The Terraform and Helm configuration under infra/, parsed once for the tests of this folder.

Each stack (infra/, infra/addons/, infra/bootstrap/) is a root module; its blocks are gathered from all
of its .tf files, parsed with python-hcl2 with the string quotes stripped. Expressions stay strings of
the form ``${...}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
STACKS = {"platform": INFRA, "addons": INFRA / "addons", "bootstrap": INFRA / "bootstrap"}
INPUTS = Path(__file__).resolve().parent / "inputs"
ENVIRONMENTS = ("dev", "uat", "prod")

_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


def parse(path: Path) -> dict[str, Any]:
    """One .tf or .tfvars file as python-hcl2 8.x serialises it (quotes stripped)."""
    with path.open() as handle:
        parsed: dict[str, Any] = hcl2.load(handle, serialization_options=_OPTIONS)
    return parsed


@dataclass
class Stack:
    """The blocks of one root module, by kind."""

    name: str
    directory: Path
    files: list[Path]
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    providers: list[dict[str, Any]] = field(default_factory=list)

    def resources_of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: body for (type_, name), body in self.resources.items() if type_ == kind}


@cache
def stack(name: str) -> Stack:
    directory = STACKS[name]
    files = sorted(directory.glob("*.tf"))
    result = Stack(name, directory, files)
    for path in files:
        parsed = parse(path)
        for block in parsed.get("variable", []):
            result.variables.update(block)
        for block in parsed.get("output", []):
            result.outputs.update(block)
        for block in parsed.get("locals", []):
            result.locals.update({k: v for k, v in block.items() if not k.startswith("__")})
        for block in parsed.get("module", []):
            result.modules.update(block)
        for kind in ("resource", "data"):
            target = result.resources if kind == "resource" else result.data
            for block in parsed.get(kind, []):
                for type_, named in block.items():
                    for resource_name, body in named.items():
                        target[(type_, resource_name)] = body
        result.terraform.extend(parsed.get("terraform", []))
        result.providers.extend(parsed.get("provider", []))
    return result


def all_tf_files() -> list[Path]:
    return sorted(INFRA.rglob("*.tf"))


def assignments(path: Path) -> dict[str, Any]:
    """The assignments of a .tfvars file (comments dropped)."""
    return {key: value for key, value in parse(path).items() if not key.startswith("__")}


def tfvars(stack_name: str, environment: str) -> dict[str, Any]:
    return assignments(STACKS[stack_name] / "env" / f"{environment}.tfvars")


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) of a parsed block, nested blocks and lists included."""
    yield path, node
    if isinstance(node, dict):
        for key, child in node.items():
            if not str(key).startswith("__"):
                yield from walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from walk(child, f"{path}[{index}]")


def strings(node: Any) -> Iterator[str]:
    for _, value in walk(node):
        if isinstance(value, str):
            yield value


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a resource (python-hcl2 gives nested blocks as lists)."""
    value = body[name]
    if isinstance(value, list):
        assert len(value) == 1, f"{name}: expected one block, found {len(value)}"
        value = value[0]
    assert isinstance(value, dict)
    return value


def blocks(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = body.get(name, [])
    return value if isinstance(value, list) else [value]


def cluster_names() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((INFRA / "cluster.yaml").read_text())
    return loaded


_VAR = re.compile(r"^\$\{var\.([a-z0-9_]+)\}$")


def variable_reference(expression: Any) -> str | None:
    """The variable name when an argument is exactly `var.<name>`."""
    if isinstance(expression, str) and (match := _VAR.match(expression)):
        return match.group(1)
    return None
