"""Just enough SQL lexing to split a script into statements, the way psql does.

Migrations run statement by statement, as `psql -1 -f` runs them: `transaction:false`
statements must each reach the server alone (CREATE INDEX CONCURRENTLY refuses to run in a
multi-statement query string), and a failure then always names its statement, so its file
line is known even when the server reports no position.

Like psql's lexer, it knows what can hide a `;`: quoted strings ('', E'', "", $tag$), line
and nested block comments, parentheses (CREATE RULE ... DO (...; ...)) and SQL-standard
function bodies (CREATE FUNCTION ... BEGIN ATOMIC ...; END).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
      (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*)
    | (?P<string>[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z) | '(?:[^']|'')*(?:'|\Z))
    | (?P<quoted>"(?:[^"]|"")*(?:"|\Z))
    | (?P<dollar>\$(?:[^\W\d]\w*)?\$)
    | (?P<word>[^\W\d][\w$]*)
    | (?P<semicolon>;)
    | (?P<paren>[()])
    | (?P<other>\s+|.)
    """,
    re.VERBOSE | re.DOTALL,
)
# Inside a statement that is not a routine, stretches that can hide no `;` nor change the
# parenthesis depth are skipped in one match (token by token, 10,000 files took seconds):
# identifiers and keywords (not one right before a quote: E'...' is a string), numbers,
# operators and whitespace; never the start of a comment, a string or a dollar quote.
_PLAIN_PART = r"""[^\s\w'"$;()/\-] | \d | -(?!-) | /(?!\*) | [^\W\d][\w$]*+(?!')"""
_PLAIN = re.compile(rf"(?:{_PLAIN_PART})(?:{_PLAIN_PART}|\s)*+", re.VERBOSE)
_ROUTINE = re.compile(r"create\s+(or\s+replace\s+)?(function|procedure)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    offset: int  # where the statement's first token starts in the script
    text: str  # from that token to just before its terminating `;`


def split_statements(script: str) -> list[Statement]:
    """The statements of `script`, in order; comment-only stretches yield nothing."""
    found: list[Statement] = []
    start: int | None = None  # first significant token of the current statement
    depth = 0  # open parentheses, plus BEGIN/CASE ... END nesting in a CREATE FUNCTION body
    routine = False  # the current statement creates a function or procedure: its words count
    pos = 0
    while pos < len(script):
        if start is not None and not routine and (plain := _PLAIN.match(script, pos)):
            pos = plain.end()
            continue
        match = _TOKEN.match(script, pos)
        assert match is not None  # `other` matches any character
        kind, end = match.lastgroup, match.end()
        if kind == "block_comment":
            end = _block_comment_end(script, pos)
        elif kind == "dollar":
            closing = script.find(match.group(), end)
            end = len(script) if closing < 0 else closing + len(match.group())
        if kind == "semicolon" and depth == 0:
            if start is not None:
                found.append(Statement(start, script[start:pos].rstrip()))
            start = None
        elif not _is_blank(kind, match.group()):
            if start is None:
                start, routine = pos, bool(_ROUTINE.match(script, pos))
            if kind == "paren":
                depth = depth + 1 if match.group() == "(" else max(0, depth - 1)
            elif kind == "word" and routine:
                depth = _routine_depth(match.group().lower(), depth)
        pos = end
    if start is not None:
        found.append(Statement(start, script[start:].rstrip()))
    return found


_LINE_COMMENTS = re.compile(r"--[^\n]*")
_SOMETHING = re.compile(r"[^\s;]")


def has_statements(script: str) -> bool:
    """Whether `script` holds a statement, most often without splitting it: once every `--`
    to its line end is gone (more than the real line comments), anything but whitespace and
    `;` is SQL, unless a block comment might hide it."""
    if "/*" not in script and _SOMETHING.search(_LINE_COMMENTS.sub("", script)):
        return True
    return bool(split_statements(script))


def _is_blank(kind: str | None, text: str) -> bool:
    return kind in ("line_comment", "block_comment") or (kind == "other" and text.isspace())


def _routine_depth(word: str, depth: int) -> int:
    if word in ("begin", "case"):
        return depth + 1
    if word == "end" and depth > 0:
        return depth - 1
    return depth


def _block_comment_end(script: str, pos: int) -> int:
    """Block comments nest in Postgres: /* a /* b */ still a comment */."""
    depth, i = 0, pos
    while i < len(script):
        pair = script[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(script)


def line_and_column(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at 0-based `index` in `text`."""
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column
