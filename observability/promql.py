"""Small, exact builders for PromQL text: quoted strings, label selectors, bucket bounds, durations."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

_DURATION = re.compile(r"(\d+)([smhdwy])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def quote(value: str) -> str:
    """A PromQL double-quoted string literal (backslashes and quotes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def any_of(values: Iterable[str]) -> str:
    """An RE2 alternation matching exactly one of ``values`` (each escaped literally)."""
    return "|".join(re.escape(value) for value in values)


def le_pattern(bound: float) -> str:
    """An RE2 pattern for every spelling of a histogram bound: ``0.3`` → ``0\\.30*``, ``1.0`` → ``1(\\.0+)?``.

    Prometheus 2.x keeps the ``le`` text the client wrote (prometheus-client writes ``0.3`` and ``1.0``,
    Go clients ``1``, some writers ``0.30``); Prometheus 3.x normalises it (``1`` → ``1.0``). Matching
    every spelling keeps an SLI correct on both, and across an upgrade.
    """
    text = repr(float(bound))
    if "e" in text or "inf" in text or "nan" in text:
        raise ValueError(f"bucket bound {bound!r} has no plain decimal spelling")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    if fraction:
        return rf"{whole}\.{fraction}0*"
    return rf"{whole}(\.0+)?"


Matchers = Mapping[str, str] | Iterable[tuple[str, str, str]]


def selector(metric: str, matchers: Matchers, *, wrap: int = 100) -> str:
    """``metric{label="value",...}``; ``matchers`` is a mapping (``=``) or (label, op, value) triples.

    A selector longer than ``wrap`` characters is written one matcher per line, so rule files stay
    readable (and within the line length yamllint allows).
    """
    if isinstance(matchers, Mapping):
        triples = [(label, "=", value) for label, value in matchers.items()]
    else:
        triples = list(matchers)
    parts = [f"{label}{op}{quote(value)}" for label, op, value in triples]
    one_line = f"{metric}{{{','.join(parts)}}}"
    if len(one_line) <= wrap:
        return one_line
    inner = ",\n".join(f"  {part}" for part in parts)
    return f"{metric}{{\n{inner}\n}}"


def seconds(duration: str) -> int:
    """The length of a Prometheus duration such as ``5m``, ``1h30m`` or ``30d``, in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def number(value: Decimal | float | int) -> str:
    """A number as PromQL text without float noise: ``Decimal('0.001')`` → ``0.001``, ``6`` → ``6``."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


# Identifiers in a PromQL expression that are not metric names.
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (a lexical scan that covers the PromQL this repo writes).

    Strings, label matchers, ranges and grouping label lists are removed first; what is left and is
    neither a function call, a keyword, a number nor a Grafana variable is a metric name.
    """
    text = _STRING.sub('""', expr)
    text = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_.:]*\}?", "0", text)  # Grafana variables
    text = _BRACES.sub("", text)
    text = _RANGE.sub("", text)
    text = _LABEL_LIST.sub("", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        before = text[match.start() - 1] if match.start() else " "
        after = text[match.end() :].lstrip()
        if before.isdigit() or before == ".":
            continue  # the exponent or unit of a number, e.g. 1e3
        if after.startswith("("):
            continue  # a function or aggregation
        if word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def sum_rate(metric: str, matchers: Matchers, window: str, by: Iterable[str]) -> str:
    """``sum by (…) (rate(selector[window]))``, laid out on several lines when the selector is long."""
    rate = f"rate({selector(metric, matchers)}[{window}])"
    group = ", ".join(by)
    if "\n" not in rate:
        return f"sum by ({group}) ({rate})"
    return f"sum by ({group}) (\n{indent(rate)}\n)"
