"""Validation of custom resources against the upstream CRD schemas kept in tests/k8s/crd-schemas/.

The schemas are stored as published (descriptions aside). Kubernetes prunes unknown fields of a
structural schema silently; here, as ``kubernetes-validate --strict`` does for built-in kinds, an
unknown field is an error: every object schema that lists its properties and does not preserve unknown
fields is closed (``additionalProperties: false``). Defaults the API server would fill in are not
applied, so manifests state required fields that have defaults.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent / "crd-schemas"


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _strict(value) for key, value in node.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(item) for item in node]
    return node


@functools.cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the strict schema of every stored CRD."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        for gvk in schema["x-kubernetes-group-version-kind"]:
            found[(f"{gvk['group']}/{gvk['version']}", gvk["kind"])] = _strict(schema)
    return found


def source(api_version: str, kind: str) -> str:
    return str(schemas()[(api_version, kind)]["$comment"])


def errors(doc: dict[str, Any]) -> list[str]:
    """Every schema violation of ``doc`` (empty when it is valid); KeyError if its kind has no schema."""
    schema = schemas()[(doc["apiVersion"], doc["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{doc['kind']} {doc.get('metadata', {}).get('name')}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: "
        f"{e.message}"
        for e in sorted(validator.iter_errors(copy.deepcopy(doc)), key=lambda e: list(map(str, e.absolute_path)))
    ]
