"""The one YAML dumper of every generated YAML file (rules, data sources, trace pipeline, k8s manifests).

One dumper, so that every generated file reads the same way and a fix to the style reaches them all:
keys in the order written, multi-line strings as literal blocks (expressions, embedded files), long prose
folded at 120 columns but never inside a Go template.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so expressions and embedded files read as written."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML itself falls back to a quoted scalar when a block cannot hold the value (trailing spaces).
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _represent_str)

# Long prose is folded at spaces; a space inside a Go template ({{ $value | humanize }}) must not be a
# fold point (the template would be split over two lines, unreadable and not greppable), so it is
# written as a no-break space while dumping and put back afterwards.
_TEMPLATE = re.compile(r"\{\{.*?\}\}")
_KEEP = "\u00a0"


def _protect(data: Any) -> Any:
    if isinstance(data, str):
        return _TEMPLATE.sub(lambda m: m.group(0).replace(" ", _KEEP), data)
    if isinstance(data, dict):
        return {key: _protect(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_protect(item) for item in data]
    return data


def dump_yaml(data: Any) -> str:
    """YAML the way this repository writes it: key order kept, literal blocks, long prose folded."""
    text = yaml.dump(_protect(data), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return text.replace(_KEEP, " ")
