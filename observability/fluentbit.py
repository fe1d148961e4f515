"""Read the Fluent Bit configuration kept in observability/fluent-bit/values.yaml (classic format).

The Helm values carry Fluent Bit's own configuration as text (``config.service``, ``config.inputs``,
``config.filters``, ``config.outputs``, ``config.customParsers``); this module parses those sections so
that tests and generated files read the same settings Fluent Bit will (index prefix, parser, options).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

VALUES_FILE = Path(__file__).resolve().parent / "fluent-bit" / "values.yaml"
_CONFIG_KEYS = ("service", "inputs", "filters", "outputs", "customParsers")


@dataclass
class Section:
    """One ``[SECTION]`` with its keys; Fluent Bit keys are case-insensitive, so lookups are too."""

    kind: str
    entries: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default: str | None = None) -> str | None:
        for name, value in self.entries:
            if name.lower() == key.lower():
                return value
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(f"[{self.kind}] has no {key}")
        return value

    def on(self, key: str) -> bool:
        return (self.get(key) or "").lower() in {"on", "true", "yes"}


def parse(text: str) -> list[Section]:
    """Sections of a classic-format Fluent Bit file (``[NAME]`` headers, ``Key Value`` lines, # comments)."""
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append(Section(line[1:-1].strip().upper()))
            continue
        if not sections:
            raise ValueError(f"a setting outside any section: {raw!r}")
        key, _, value = line.partition(" ")
        sections[-1].entries.append((key, value.strip()))
    return sections


@cache
def values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(VALUES_FILE.read_text())
    return data


@cache
def sections() -> dict[str, list[Section]]:
    """``config.<key>`` → its parsed sections, for every configuration key the chart renders."""
    config = values()["config"]
    return {key: parse(config[key]) for key in _CONFIG_KEYS if key in config}


def all_sections(kind: str) -> list[Section]:
    return [s for group in sections().values() for s in group if s.kind == kind.upper()]


def output(plugin: str) -> Section:
    """The one ``[OUTPUT]`` using ``plugin``."""
    found = [s for s in all_sections("OUTPUT") if (s.get("Name") or "").lower() == plugin]
    if len(found) != 1:
        raise LookupError(f"expected one {plugin} output, found {len(found)}")
    return found[0]


def parser(name: str) -> Section:
    found = [s for s in all_sections("PARSER") if s.get("Name") == name]
    if len(found) != 1:
        raise LookupError(f"expected one parser named {name}, found {len(found)}")
    return found[0]


def log_index_prefix() -> str:
    """The index prefix the OpenSearch output writes (``<prefix>-YYYY.MM.DD``)."""
    return output("opensearch")["Logstash_Prefix"]


def log_index_pattern() -> str:
    """The pattern matching every log index: ``<prefix>-*``."""
    return f"{log_index_prefix()}-*"
