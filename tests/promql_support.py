"""The metric names a PromQL expression reads, for the tests that prove every rendered rule and
panel has data: a small tokenizer of PromQL (strings, label matchers, ranges, grouping lists and
function calls are not metric names), and Grafana's variables put back to what they stand for."""

from __future__ import annotations

import re

TOKEN = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<braces>\{)
    |(?P<range>\[[^\]]*\])
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<number>(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)(?:ms|s|m|h|d|w|y)?)
    |(?P<space>\s+)
    |(?P<other>.)""",
    re.X,
)
# Words that are PromQL's own: operators, modifiers and the grouping clauses (a list follows).
KEYWORDS = {"and", "or", "unless", "bool", "offset", "start", "end", "inf", "nan"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Grafana's interval variables, and any other variable (a label value filter: everything).
INTERVALS = re.compile(r"\$(?:\{)?__(?:rate_interval|interval|range)(?:\})?")
VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")


def substitute_grafana(expr: str) -> str:
    return VARIABLE.sub(".*", INTERVALS.sub("5m", expr))


def _skip_braces(text: str, start: int) -> tuple[int, list[str]]:
    """From just after `{` to just after its `}`; returns (position, __name__ values named)."""
    names, depth, pos = [], 1, start
    while depth and pos < len(text):
        found = TOKEN.match(text, pos)
        assert found, text[pos:]
        if found["string"] is not None:
            before = text[start : found.start()]
            if re.search(r"__name__\s*=\s*$", before):
                names.append(found["string"][1:-1])
        elif found.group() == "{":
            depth += 1
        elif found.group() == "}":
            depth -= 1
        pos = found.end()
    return pos, names


def _tokens(expr: str) -> list[tuple[str, str]]:
    """(kind, text) of each token, Grafana's variables substituted; a label matcher is one
    `braces` token, and a metric name's kind is `metric` (a `{__name__="x"}` is one too)."""
    text = substitute_grafana(expr)
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        found = TOKEN.match(text, pos)
        assert found, text[pos:]
        kind = found.lastgroup or "other"
        pos = found.end()
        if kind == "braces":
            pos, named = _skip_braces(text, pos)
            tokens.extend(("metric", name) for name in named)
            tokens.append(("braces", ""))
        elif kind != "space":
            tokens.append((kind, found.group()))
    for index, (kind, value) in enumerate(tokens):
        if kind != "ident" or value.lower() in KEYWORDS or value in GROUPING:
            continue
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        preceding = tokens[index - 1][1] if index else ""
        if following == "(" or following in ("by", "without"):  # a function or an aggregation
            continue
        if _in_grouping_list(tokens, index) or preceding == "@":
            continue
        tokens[index] = ("metric", value)
    return tokens


def metric_names(expr: str) -> set[str]:
    """Every metric name `expr` selects (Grafana's variables substituted first)."""
    return {value for kind, value in _tokens(expr) if kind == "metric"}


def missing_names(expr: str, have: set[str]) -> set[str]:
    """The metric names `expr` needs that are not in `have`. `A or B` needs only one side: a
    rule may read either of two exporters' names (the fewest missing side is reported)."""
    tokens = _tokens(expr)

    def group(index: int) -> tuple[set[str], int]:
        sides: list[set[str]] = [set()]
        while index < len(tokens):
            kind, value = tokens[index]
            if value == ")":
                return min(sides, key=len), index + 1
            if value == "(":
                inner, index = group(index + 1)
                sides[-1] |= inner
                continue
            if kind == "ident" and value.lower() == "or":
                sides.append(set())
            elif kind == "metric" and value not in have:
                sides[-1].add(value)
            index += 1
        return min(sides, key=len), index

    return group(0)[0]


def _in_grouping_list(tokens: list[tuple[str, str]], index: int) -> bool:
    """Whether tokens[index] sits in the parenthesised list after by/without/on/ignoring/group_*."""
    depth = 0
    for back in range(index - 1, -1, -1):
        value = tokens[back][1]
        if value == ")":
            depth += 1
        elif value == "(":
            if depth == 0:
                return back > 0 and tokens[back - 1][1] in GROUPING
            depth -= 1
    return False
