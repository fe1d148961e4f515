"""Write the input names of a Terraform module or the values keys of a Helm chart, one path a line.

Run it on an upstream file at the version being pinned, from a local checkout of that project:

    python tests/infra/inputs/extract_inputs.py module variables.tf > tests/infra/inputs/module-<name>-<version>.txt
    python tests/infra/inputs/extract_inputs.py chart <chart directory> > tests/infra/inputs/chart-<name>-<version>.txt

then add the header lines (`# module <source> <version>` or `# chart <repository> <chart> <version>`,
and `# source: <url of the files at the tag>`).

A path is dot-separated; a key that contains a dot is quoted (`configs.params."server.insecure"`); `*`
stands for a map key or a list element. A path with nothing below it takes any value (a free-form map, a
list, a string): test_inputs.py accepts anything under it; so does `<path>.*` for a chart value whose
default is an empty map or null. A chart's keys are those of its values.yaml plus every `.Values.<path>`
its templates read (options documented only as comments in values.yaml are real keys too).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import yaml

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\"(?:[^\"\\]|\\.)*\")|(-?[0-9.]+)|(.))")


def _tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(text):
        token = next((group for group in match.groups() if group is not None), None)
        if token is not None and token.strip():
            tokens.append(token)
    return tokens


class _TypeParser:
    """A recursive-descent reader of Terraform type constraints, e.g. `map(object({a = optional(string)}))`."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def _next(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def _skip_expression(self) -> None:
        """Skip an optional() default value, whatever its shape, up to the closing bracket."""
        depth = 0
        while True:
            token = self._peek()
            if depth == 0 and token in {")", ","}:
                return
            if token in {"(", "{", "["}:
                depth += 1
            elif token in {")", "}", "]"}:
                depth -= 1
            self._next()

    def parse(self) -> Any:
        """Return None for a leaf type, {"*": child} for collections, or {attribute: child} for objects."""
        name = self._next()
        if name in {"string", "number", "bool", "any"}:
            return None
        if name == "optional":
            self._expect("(")
            inner = self.parse()
            if self._peek() == ",":
                self._next()
                self._skip_expression()
            self._expect(")")
            return inner
        if name in {"map", "list", "set"}:
            self._expect("(")
            inner = self.parse()
            self._expect(")")
            return {"*": inner}
        if name == "tuple":
            self._expect("(")
            self._expect("[")
            while self._peek() != "]":
                self.parse()
                if self._peek() == ",":
                    self._next()
            self._expect("]")
            self._expect(")")
            return None
        if name == "object":
            self._expect("(")
            self._expect("{")
            attributes: dict[str, Any] = {}
            while self._peek() != "}":
                key = self._next()
                self._expect("=")
                attributes[key] = self.parse()
                if self._peek() == ",":
                    self._next()
            self._expect("}")
            self._expect(")")
            return attributes
        raise ValueError(f"unknown type token {name!r} at {self.pos}")

    def _expect(self, token: str) -> None:
        found = self._next()
        if found != token:
            raise ValueError(f"expected {token!r}, found {found!r} at {self.pos}")


def _paths(prefix: str, tree: Any) -> Iterator[str]:
    yield prefix
    if isinstance(tree, dict):
        for key, child in tree.items():
            yield from _paths(f"{prefix}.{key}", child)


def module_inputs(variables_tf: Path) -> list[str]:
    """Every variable of a module, and every attribute path of its object-typed variables."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    with variables_tf.open() as handle:
        parsed = hcl2.load(handle, serialization_options=options)
    paths: list[str] = []
    for block in parsed.get("variable", []):
        for name, body in block.items():
            type_text = str(body.get("type", "any"))
            type_text = type_text.removeprefix("${").removesuffix("}")
            paths.extend(_paths(name, _TypeParser(type_text).parse()))
    return sorted(set(paths))


_VALUES_REFERENCE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)")
# `index .Values.configs.params "server.insecure"`: keys that contain dots.
_VALUES_INDEX = re.compile(r'index\s+\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)*)((?:\s+"[^"]+")+)')


def segment(key: object) -> str:
    """One path segment; a key that contains a dot is written in double quotes."""
    text = str(key)
    return f'"{text}"' if "." in text else text


def chart_values(chart: Path) -> list[str]:
    """Every key path of a chart's default values and its templates; lists and empty maps are leaves."""
    values = yaml.safe_load((chart / "values.yaml").read_text())
    referenced: set[str] = set()
    for template in sorted((chart / "templates").rglob("*")):
        if template.is_file():
            text = template.read_text(errors="replace")
            found = [match.group(1).strip(".").split(".") for match in _VALUES_REFERENCE.finditer(text)]
            for match in _VALUES_INDEX.finditer(text):
                parts = [part for part in match.group(1).strip(".").split(".") if part]
                found.append(parts + [segment(key) for key in re.findall(r'"([^"]+)"', match.group(2))])
            for parts in found:
                referenced.update(".".join(parts[: i + 1]) for i in range(len(parts)))

    def walk(prefix: str, node: Any) -> Iterator[str]:
        if prefix:
            yield prefix
            # An empty map or null default is free-form (annotations, env, extra config), even where a
            # template also reads a named key under it.
            if node is None or node == {}:
                yield f"{prefix}.*"
        if isinstance(node, dict):
            for key, child in node.items():
                yield from walk(f"{prefix}.{segment(key)}" if prefix else segment(key), child)

    return sorted(set(walk("", values)) | referenced)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in {"module", "chart"}:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[2])
    for line in module_inputs(path) if argv[1] == "module" else chart_values(path):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
