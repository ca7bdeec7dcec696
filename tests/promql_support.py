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


def metric_names(expr: str) -> set[str]:
    """Every metric name `expr` selects (Grafana's variables substituted first)."""
    text = substitute_grafana(expr)
    tokens: list[tuple[str, str]] = []
    names: set[str] = set()
    pos = 0
    while pos < len(text):
        found = TOKEN.match(text, pos)
        assert found, text[pos:]
        kind = found.lastgroup or "other"
        pos = found.end()
        if kind == "braces":
            pos, named = _skip_braces(text, pos)
            names.update(named)
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
        if _in_grouping_list(tokens, index):
            continue
        if preceding == "@":
            continue
        names.add(value)
    return names


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
