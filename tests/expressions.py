"""PromQL as Prometheus's grammar reads it (promql-parser), for the tests that check which metrics and
labels the rules and dashboards use. The project's own scanner (observability.promql.metric_names) is
lexical; these tests hold it to what the parser reads.
"""

from __future__ import annotations

import re

import promql_parser as pql

# Grafana's interval macros stand where PromQL wants a duration; other variables only inside strings.
_GRAFANA_DURATION = re.compile(r"\$\{?__(?:rate_interval|interval|range)(?:_ms|_s)?\}?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{?[A-Za-z_]\w*")
# Aggregations whose result keeps the labels of their input (they select series, they do not group).
_SELECTING = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})


def parse(expr: str) -> pql.Expr:
    """The syntax tree of ``expr``, a rule's or a dashboard's; raises ValueError when it does not parse."""

    def outside_strings(text: str) -> str:
        text = _GRAFANA_DURATION.sub("5m", text)
        if found := _VARIABLE.search(text):
            raise ValueError(f"a Grafana variable outside a string: {found.group(0)} in {expr!r}")
        return text

    pieces, last = [], 0
    for string in _STRING.finditer(expr):
        pieces += [outside_strings(expr[last : string.start()]), string.group(0)]
        last = string.end()
    pieces.append(outside_strings(expr[last:]))
    return pql.parse("".join(pieces))


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects; a selector that names its metrics by a pattern is refused."""
    names: set[str] = set()

    def visit(node: pql.Expr) -> None:
        if not isinstance(node, pql.VectorSelector):
            return
        if node.name:
            names.add(node.name)
            return
        by_name = [m for m in node.matchers.matchers if m.name == "__name__"]
        if len(by_name) != 1 or by_name[0].op != pql.MatchOp.Equal:
            raise ValueError(f"{expr!r} selects metrics by a pattern: which it reads cannot be told")
        names.add(by_name[0].value)

    pql.walk(parse(expr), visit)
    return names


def grouping(expr: str) -> frozenset[str] | None:
    """The labels the series of ``expr``'s result are aggregated by (``sum by (route) (…)`` → {route}).

    Followed through what keeps its input's labels (parentheses, functions, topk, a comparison with a
    number, the left side of a one-to-one or many-to-one operation). None when the result is not
    aggregated by a named set of labels (a bare selector, or ``without``).
    """
    return _grouping(parse(expr))


def _grouping(node: pql.Expr) -> frozenset[str] | None:
    if isinstance(node, pql.ParenExpr):
        return _grouping(node.expr)
    if isinstance(node, pql.AggregateExpr):
        if str(node.op) in _SELECTING:
            return _grouping(node.expr)
        if node.modifier is None:
            return frozenset()
        return frozenset(node.modifier.labels) if node.modifier.type == pql.AggModifierType.By else None
    if isinstance(node, pql.Call):
        operands = [arg for arg in node.args if not isinstance(arg, pql.NumberLiteral | pql.StringLiteral)]
        inner = _grouping(operands[0]) if operands else frozenset()
        if node.func.name == "histogram_quantile" and inner is not None:
            return inner - {"le"}  # the buckets are folded into the quantile
        return inner
    if isinstance(node, pql.BinaryExpr):
        if isinstance(node.lhs, pql.NumberLiteral):
            return _grouping(node.rhs)
        modifier = node.modifier
        if (
            modifier is not None
            and modifier.matching is not None
            and modifier.matching.type == pql.LabelModifierType.Include
            and modifier.card == pql.VectorMatchCardinality.OneToOne
        ):
            return frozenset(modifier.matching.labels)  # one-to-one on (…): only those labels are left
        return _grouping(node.lhs)
    return None
