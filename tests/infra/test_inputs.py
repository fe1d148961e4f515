"""Every argument passed to a registry module and every values key passed to a chart exists at the
pinned version, checked against the input lists in inputs/ (read from each project's source at its tag;
the header of each list names it). A misspelt or renamed input fails here instead of at `terraform plan`
(module) or, worse, silently (Helm ignores unknown values keys)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.inputs.extract_inputs import chart_values
from tests.infra.terraform import INFRA, INPUTS, ROOT, stack

_SEGMENT = re.compile(r'"[^"]*"|[^.]+')


def segments(path: str) -> list[str]:
    return _SEGMENT.findall(path)


def segment(key: object) -> str:
    text = str(key)
    return f'"{text}"' if "." in text else text


@dataclass
class Node:
    children: dict[str, Node] = field(default_factory=dict)


@dataclass
class Reference:
    """The input paths of one module or chart, as a tree; a node without children takes any value."""

    kind: str
    name: str
    version: str
    sources: list[str]
    root: Node = field(default_factory=Node)

    def add(self, path: str) -> None:
        node = self.root
        for part in segments(path):
            node = node.children.setdefault(part, Node())

    def merge(self, paths: list[str]) -> Reference:
        """This reference plus `paths`, except below an input that is already free-form here."""
        merged = Reference(self.kind, self.name, self.version, self.sources)
        for existing in self.paths():
            merged.add(existing)
        for path in paths:
            if not self.is_free_form_above(path):
                merged.add(path)
        return merged

    def is_free_form_above(self, path: str) -> bool:
        node = self.root
        for part in segments(path):
            if part not in node.children:
                return False
            node = node.children[part]
            if not node.children:
                return True
        return False

    def paths(self, node: Node | None = None, prefix: str = "") -> list[str]:
        node = node or self.root
        found = []
        for key, child in node.children.items():
            path = f"{prefix}.{key}" if prefix else key
            found.append(path)
            found.extend(self.paths(child, path))
        return found


def parse_reference(path: Path) -> Reference:
    lines = path.read_text().splitlines()
    header = lines[0].removeprefix("# ").split()
    sources = [line.removeprefix("# source: ") for line in lines if line.startswith("# source: ")]
    assert sources, f"{path.name} does not say where it was read from"
    if header[0] == "module":
        reference = Reference("module", header[1], header[2], sources)
    else:
        assert header[0] == "chart", path.name
        reference = Reference("chart", f"{header[1]} {header[2]}", header[3], sources)
    for line in lines:
        if line and not line.startswith("#"):
            reference.add(line)
    return reference


@cache
def references() -> dict[str, Reference]:
    loaded = [parse_reference(path) for path in sorted(INPUTS.glob("*.txt"))]
    return {reference.name: reference for reference in loaded}


def unknown_paths(reference: Reference, value: Any, locals_: dict[str, Any]) -> list[str]:
    """Paths of `value` (the arguments of one module call, or one chart's values) the reference lacks."""
    errors: list[str] = []

    def visit(node: Node, path: str, item: Any) -> None:
        if isinstance(item, str) and (match := re.fullmatch(r"\$\{local\.([a-z0-9_]+)\}", item)):
            item = locals_.get(match.group(1), item)
        if not node.children:
            return  # a free-form input: any value
        if isinstance(item, dict):
            for key, child in item.items():
                if str(key).startswith("__"):
                    continue
                part = segment(key)
                if part in node.children:
                    visit(node.children[part], f"{path}.{part}", child)
                elif "*" in node.children:
                    visit(node.children["*"], f"{path}.{part}", child)
                else:
                    errors.append(f"{path}.{part}".lstrip("."))
        elif isinstance(item, list) and "*" in node.children:
            for child in item:
                visit(node.children["*"], f"{path}[]", child)

    visit(reference.root, "", value)
    return errors


def constraint_admits(constraint: str, version: str) -> bool:
    """Whether a pessimistic constraint `~> X.Y` admits X.Y.Z (and whether X.Y.Z is its lowest release)."""
    match = re.fullmatch(r"~> (\d+)\.(\d+)", constraint)
    assert match, constraint
    major, minor, _ = (int(part) for part in version.split("."))
    return major == int(match.group(1)) and minor == int(match.group(2))


################################################################################
# Modules
################################################################################


def module_calls() -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, module, body) for name in ("platform", "bootstrap") for module, body in stack(name).modules.items()]


_META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}


@pytest.mark.parametrize("call", module_calls(), ids=lambda call: f"{call[0]}.{call[1]}")
def test_module_arguments_exist_at_the_pinned_version(call: tuple[str, str, dict[str, Any]]) -> None:
    stack_name, module, body = call
    reference = references().get(body["source"])
    assert reference, f"no input list for {body['source']} in tests/infra/inputs/"
    assert constraint_admits(body["version"], reference.version), (
        f"{module}: the list is for {reference.version}, the constraint is {body['version']}"
    )
    arguments = {key: value for key, value in body.items() if key not in _META_ARGUMENTS}
    errors = unknown_paths(reference, arguments, stack(stack_name).locals)
    assert not errors, f"{module}: not inputs of {reference.name} {reference.version}: {errors}"


def test_the_module_check_catches_renamed_v21_inputs() -> None:
    reference = references()["terraform-aws-modules/eks/aws"]
    # v20 names, renamed in v21 (cluster_name → name, cluster_version → kubernetes_version, ...).
    stale = {"cluster_name": "x", "cluster_version": "1.35", "cluster_addons": {}, "name": "x"}
    assert sorted(unknown_paths(reference, stale, {})) == ["cluster_addons", "cluster_name", "cluster_version"]
    nested = {"eks_managed_node_groups": {"default": {"instance_types": [], "instance_type": "m7i.large"}}}
    assert unknown_paths(reference, nested, {}) == ["eks_managed_node_groups.default.instance_type"]


def test_every_input_list_is_used() -> None:
    used = {body["source"] for _, _, body in module_calls()}
    used |= {f"{body['repository']} {body['chart']}" for body in releases().values() if "repository" in body}
    assert set(references()) == used


################################################################################
# Charts
################################################################################


def releases() -> dict[str, dict[str, Any]]:
    return stack("addons").resources_of("helm_release")


_VALUES_FILE = re.compile(r'(templatefile|file)\("\$\{path\.module\}/(values/[a-z0-9-]+\.yaml)"')
_OBSERVABILITY_FILE = re.compile(r"file\(local\.([a-z_]+)\)")
_LOCAL_VALUES = re.compile(r"yamlencode\(local\.([a-z0-9_]+)\)")


def template_variables(expression: str, start: int) -> dict[str, str]:
    """The `{ name = expression, ... }` map passed to templatefile() at `start` (the call's position)."""
    opening = expression.index("{", start)
    depth, position, variables = 0, opening, {}
    body_start = opening + 1
    while True:
        char = expression[position]
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
            if depth == 0:
                break
        position += 1
    body = expression[body_start:position]
    depth, current, entries = 0, "", []
    for char in body:
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
        if char == "," and depth == 0:
            entries.append(current)
            current = ""
        else:
            current += char
    entries.append(current)
    for entry in entries:
        if "=" in entry:
            name, value = entry.split("=", 1)
            variables[name.strip()] = value.strip()
    return variables


def release_values(release: str) -> list[tuple[str, Any, dict[str, str]]]:
    """(label, parsed values, templatefile variables) for each element of a release's `values`."""
    body = releases()[release]
    expression = body["values"] if isinstance(body["values"], str) else str(body["values"])
    found: list[tuple[str, Any, dict[str, str]]] = []
    for match in _VALUES_FILE.finditer(expression):
        path = INFRA / "addons" / match.group(2)
        variables = template_variables(expression, match.end()) if match.group(1) == "templatefile" else {}
        found.append((match.group(2), render(path, variables), variables))
    for match in _LOCAL_VALUES.finditer(expression):
        found.append((f"local.{match.group(1)}", stack("addons").locals[match.group(1)], {}))
    return found


def render(path: Path, variables: dict[str, str]) -> Any:
    """A values file as templatefile() would render it: JSON maps where Terraform passes jsonencode()."""
    text = path.read_text()
    for name, expression in variables.items():
        replacement = '{"key": "value"}' if expression.startswith("jsonencode(") else "value"
        text = text.replace("${" + name + "}", replacement)
    return yaml.safe_load(text)


def base_values_keys(release: str) -> list[str]:
    """Keys of a values file from observability/ layered under ours (its tpl strings read its own keys)."""
    expression = str(releases()[release]["values"])
    paths: list[str] = []
    for local_name in _OBSERVABILITY_FILE.findall(expression):
        relative = stack("addons").locals[local_name].removeprefix("${local.observability}/")
        loaded = yaml.safe_load((ROOT / "observability" / relative).read_text())

        def walk(prefix: str, node: Any) -> None:
            if isinstance(node, dict):
                for key, child in node.items():
                    path = f"{prefix}.{segment(key)}" if prefix else segment(key)
                    paths.append(path)
                    walk(path, child)

        walk("", loaded)
    return paths


def chart_reference(release: str) -> Reference:
    body = releases()[release]
    if "repository" not in body:
        chart_dir = INFRA / "addons" / body["chart"].removeprefix("${path.module}/")
        version = re.search(r"^version: (\S+)$", (chart_dir / "Chart.yaml").read_text(), re.M)
        assert version
        reference = Reference("chart", chart_dir.name, version.group(1), [str(chart_dir)])
        for path in chart_values(chart_dir):
            reference.add(path)
        return reference
    reference = references().get(f"{body['repository']} {body['chart']}")
    assert reference, f"no input list for chart {body['chart']} of {body['repository']} in tests/infra/inputs/"
    assert reference.version == body["version"], f"{release}: pinned {body['version']}, list for {reference.version}"
    return reference.merge(base_values_keys(release))


@pytest.mark.parametrize("release", sorted(releases()))
def test_chart_values_keys_exist_at_the_pinned_version(release: str) -> None:
    reference = chart_reference(release)
    values = release_values(release)
    assert values, f"{release}: no values"
    for label, parsed, _ in values:
        assert isinstance(parsed, dict), f"{release}: {label} is not a mapping"
        errors = unknown_paths(reference, parsed, stack("addons").locals)
        assert not errors, f"{release} ({label}): not values of {reference.name} {reference.version}: {errors}"


@pytest.mark.parametrize("release", sorted(releases()))
def test_every_template_placeholder_is_given_a_value(release: str) -> None:
    for label, _, variables in release_values(release):
        if not variables:
            continue
        placeholders = set(re.findall(r"\$\{([a-z_]+)\}", (INFRA / "addons" / label).read_text()))
        assert placeholders == set(variables), (
            f"{release} ({label}): placeholders without a value {placeholders - set(variables)}, "
            f"values without a placeholder {set(variables) - placeholders}"
        )


def test_the_chart_check_catches_a_misspelt_key() -> None:
    reference = references()["https://prometheus-community.github.io/helm-charts kube-prometheus-stack"]
    good = {"prometheus": {"prometheusSpec": {"serviceMonitorSelector": {"matchLabels": {"a": "b"}}}}}
    assert unknown_paths(reference, good, {}) == []
    bad = {"prometheus": {"prometheusSpec": {"serviceMonitorSelectorr": {}}}, "grafana": {"sidecars": {}}}
    assert sorted(unknown_paths(reference, bad, {})) == [
        "grafana.sidecars",
        "prometheus.prometheusSpec.serviceMonitorSelectorr",
    ]
    # A key with a dot is one segment, quoted.
    argo = references()["https://argoproj.github.io/argo-helm argo-cd"]
    assert unknown_paths(argo, {"configs": {"params": {"server.insecure": True, "server.insecur": True}}}, {}) == [
        'configs.params."server.insecur"'
    ]
