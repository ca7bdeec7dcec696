"""Load platform.yaml files: parse with positions, interpolate ${VAR}, deep-merge, validate.

Every problem, from YAML syntax to cross-field rules, comes back at once as
`file:LINE:COL: dotted.path: message`, pointing at the node that is wrong.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mindscape_ops.config.models import Platform
from mindscape_ops.config.rules import check_platform
from mindscape_ops.config.source import read_platform_file
from mindscape_ops.errors import ConfigError

Loc = tuple[str | int, ...]
Position = tuple[str, int, int]  # file, line, column (1-based)

_VAR_RE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\{([^}]*)\})")


@dataclass
class Document:
    """Merged data of one or more files, with where each path was last defined."""

    data: dict[str, Any] = field(default_factory=dict)
    keys: dict[Loc, Position] = field(default_factory=dict)  # where a mapping key is written
    values: dict[Loc, Position] = field(default_factory=dict)  # where a value starts
    problems: list[str] = field(default_factory=list)
    reported: set[Loc] = field(default_factory=set)
    unreadable: bool = False  # some file could not be parsed at all: validating the rest misleads

    def position(self, loc: Loc, *, at_key: bool = False) -> Position:
        first = self.keys if at_key else self.values
        for table in (first, self.keys, self.values):
            if loc in table:
                return table[loc]
        if loc:
            return self.position(loc[:-1])
        return next(iter(self.values.values()), ("platform.yaml", 1, 1))

    def report(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        if loc in self.reported:  # one message per node: the first is the cause
            return
        self.reported.add(loc)
        file, line, col = self.position(loc, at_key=at_key)
        self.problems.append(f"{file}:{line}:{col}: {dotted(loc) or '(top level)'}: {message}")

    def fail(self) -> ConfigError:
        def order(problem: str) -> tuple[str, int, int]:
            file, line, col = problem.split(":", 3)[:3]
            return (file, int(line), int(col)) if line.isdigit() and col.isdigit() else (file, 0, 0)

        return ConfigError(sorted(self.problems, key=order))


@dataclass(frozen=True)
class LoadedPlatform:
    platform: Platform
    files: tuple[Path, ...]

    @property
    def root(self) -> Path:
        """The project directory: where the first file lives; generated paths are relative to it."""
        return self.files[0].resolve().parent


def dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load(files: Sequence[Path | str], env: Mapping[str, str] | None = None) -> LoadedPlatform:
    """Load and validate; raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    paths = tuple(Path(f) for f in files)
    doc = Document()
    for path in paths:
        _read_into(doc, path, env)
    if doc.unreadable:
        raise doc.fail()
    try:
        platform = Platform.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors():
            _report_pydantic(doc, error)
        platform, dropped = _without_bad_values(doc.data, exc)
    else:
        dropped = []
    if platform is not None:
        # Rules across the platform (duplicate ports, dependencies) run even when single values
        # were wrong, on what is left of the file: every problem is reported at once. A rule
        # that involves a dropped value would judge its default, not the user's: it waits.
        for loc, message in check_platform(platform):
            if not any(_involves(path, loc, message) for path in dropped):
                doc.report(loc, message)
    if doc.problems:
        raise doc.fail()
    return LoadedPlatform(platform, paths)


def _without_bad_values(data: dict[str, Any], exc: ValidationError, rounds: int = 3) -> tuple[Platform | None, list]:
    """The platform with every invalid value dropped (its default stands in), and the paths
    dropped, for the cross-field rules; no platform when that cannot be made valid."""
    import copy

    data, dropped = copy.deepcopy(data), []
    for _ in range(rounds):
        for error in exc.errors():
            loc = _clean_loc(error["loc"])
            # drop the nearest mapping key holding the bad value (a whole list, if inside one)
            while loc and (isinstance(loc[-1], int) or error["type"] == "missing"):
                loc = loc[:-1]
            if not loc or not _drop(data, loc):
                return None, dropped
            dropped.append(loc)
        try:
            return Platform.model_validate(data), dropped
        except ValidationError as again:
            exc = again
    return None, dropped


def _involves(dropped: Loc, loc: Loc, message: str) -> bool:
    """Does a rule's problem touch a dropped value: on its path, or by naming the service
    whose same setting was dropped (a duplicate port against a port that was invalid)?"""
    shorter = min(len(dropped), len(loc))
    if dropped[:shorter] == loc[:shorter]:
        return True
    named = len(dropped) >= 2 and dotted(dropped[:2]) in message
    return named and (len(dropped) == 2 or dropped[2:] == loc[2:])


def _drop(data: Any, loc: Loc) -> bool:
    for part in loc[:-1]:
        inside = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and part < len(data)
        )
        if inside:
            data = data[part]
        else:
            return True  # already gone with a parent
    if isinstance(data, dict) and loc[-1] in data:
        del data[loc[-1]]
        return True
    return isinstance(data, dict)


# -- reading ---------------------------------------------------------------------------


def _read_into(doc: Document, path: Path, env: Mapping[str, str]) -> None:
    name = str(path)
    try:
        data = _parse(doc, name, read_platform_file(path), env)
    except _Unreadable as exc:
        doc.problems.append(exc.problem)
        doc.unreadable = True
        return
    if not isinstance(data, dict):
        doc.report((), "the top level must be a mapping of keys (version, project, services, ...)")
        doc.unreadable = True
        return
    _merge(doc.data, data)


def _parse(doc: Document, name: str, raw: bytes, env: Mapping[str, str]) -> Any:
    """File bytes to plain data, positions recorded in `doc`; _Unreadable when that cannot be done."""
    try:
        root = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
        if root is None:
            raise _Unreadable(f"{name}:1:1: (file): is empty; run `mindscape init` for a starter file")
        return _Reader(doc, name, env).build(root, ())
    except UnicodeDecodeError:
        raise _Unreadable(f"{name}:1:1: (file): is not UTF-8 text; a platform file is YAML") from None
    except yaml.MarkedYAMLError as exc:  # syntax, or a tag no safe constructor knows (`!shell`)
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = f"{exc.problem or exc.context}; fix the YAML syntax"
        raise _Unreadable(f"{name}:{line}:{col}: (yaml): {problem}") from None
    except yaml.YAMLError as exc:
        raise _Unreadable(f"{name}:1:1: (yaml): {exc}") from None
    except RecursionError:  # PyYAML composes recursively: thousands of nested brackets exhaust the stack
        problem = "is nested too deeply to read; a platform file is a few levels deep"
        raise _Unreadable(f"{name}:1:1: (yaml): {problem}") from None


# Aliases share nodes, so a few lines can stand for billions of values ("billion laughs").
# A real platform file is a few hundred values; this is far above any and far below harm.
MAX_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Unreadable(Exception):
    """The file cannot become data (not text, bad syntax, alias loop or bomb); `problem` says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _Reader:
    """Turns composed YAML nodes into plain data while recording positions."""

    def __init__(self, doc: Document, file: str, env: Mapping[str, str]) -> None:
        self.doc, self.file, self.env = doc, file, env
        self.constructor = yaml.SafeLoader("")
        self.building: set[int] = set()  # ids of the nodes on the current path: an alias back to one loops
        self.built = 0

    def _pos(self, node: yaml.Node) -> Position:
        return (self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def _stop(self, position: Position, loc: Loc, message: str) -> _Unreadable:
        file, line, col = position
        return _Unreadable(f"{file}:{line}:{col}: {dotted(loc) or '(top level)'}: {message}")

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        if id(node) in self.building:
            # an alias is the very node it names: point at the key it is written under, if any
            raise self._stop(
                self.doc.keys.get(loc) or self._pos(node),
                loc,
                "an alias refers to itself (a value cannot contain itself); remove the loop",
            )
        self.built += 1
        if self.built > MAX_VALUES:
            raise self._stop(
                self._pos(node), loc, f"more than {MAX_VALUES} values once aliases are expanded; is it an alias bomb?"
            )
        self.doc.values[loc] = self._pos(node)
        self.building.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            value = self.constructor.construct_object(node)
        finally:
            self.building.discard(id(node))
        if isinstance(value, str) and "$" in value:
            value = self._interpolate(value, loc)
        return value

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        # `<<:` merge keys are resolved here, not by PyYAML's flatten_mapping, so that aliases
        # inside them are counted and loop-checked like any other value.
        merged = self._merged([v for k, v in node.value if k.tag == _MERGE_TAG], loc)
        self.doc.values[loc] = self._pos(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.constructor.construct_object(key_node)
            if not isinstance(key, str):
                file, line, col = self._pos(key_node)
                self.doc.problems.append(
                    f"{file}:{line}:{col}: {dotted(loc) or '(top level)'}: key {key!r} must be text"
                )
                continue
            self.doc.keys[(*loc, key)] = self._pos(key_node)
            if key in result:
                self.doc.report((*loc, key), "is defined twice in this mapping; keep one", at_key=True)
            result[key] = self.build(value_node, (*loc, key))
        return {**merged, **result}  # keys written in the mapping win over merged ones

    def _merged(self, sources: list[yaml.Node], loc: Loc) -> dict[str, Any]:
        """What `<<: *a` or `<<: [*a, *b]` brings in; earlier mappings win, as YAML says."""
        merged: dict[str, Any] = {}
        for source in sources:
            items = source.value if isinstance(source, yaml.SequenceNode) else [source]
            for item in reversed(items):
                if not isinstance(item, yaml.MappingNode):
                    raise self._stop(self._pos(item), loc, "`<<:` merges a mapping or a list of mappings, nothing else")
                merged.update(self.build(item, loc))
        return merged

    def _interpolate(self, text: str, loc: Loc) -> str:
        def replace(match: re.Match[str]) -> str:
            escaped, var, default, bad = match.groups()
            if escaped:
                return "$"
            if bad is not None:
                self.doc.report(
                    loc, f"'${{{bad}}}' is not a valid variable reference; use ${{NAME}} or ${{NAME:-default}}"
                )
                return ""
            value = self.env.get(var)
            if value is None or (value == "" and ":-" in match.group(0)):
                if default is not None:
                    return default
                self.doc.report(loc, f"variable {var} is not set; export it or write ${{{var}:-default}}")
                return ""
            return value

        return _VAR_RE.sub(replace, text)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> None:
    """Deep-merge mappings (later wins); lists and scalars are replaced whole."""
    for key, value in override.items():
        if value is None and isinstance(base.get(key), dict):
            continue  # a bare `postgres:` in a later file lists the service; it does not reset it
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


# -- pydantic errors to user messages -------------------------------------------------------


def _report_pydantic(doc: Document, error: Mapping[str, Any]) -> None:
    loc = _clean_loc(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        message = f"unknown key {loc[-1]!r}"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
        elif allowed:
            message += f"; allowed here: {', '.join(allowed)}"
        doc.report(loc, message, at_key=True)
        return
    if kind == "missing":
        doc.report(loc, "is required")
        return
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "must be a mapping of keys"
    doc.report(loc, message)


def _clean_loc(loc: Sequence[Any]) -> Loc:
    # pydantic appends markers for function validators and unions; they are not in the file.
    return tuple(
        p for p in loc if isinstance(p, int) or not (str(p).startswith(("function-", "literal[")) or "[" in str(p))
    )


def _allowed_keys(loc: Loc) -> list[str]:
    model: Any = Platform
    for part in loc:
        model = _unwrap(model)
        if isinstance(model, type) and issubclass(model, BaseModel):
            info = model.model_fields.get(str(part)) or next(
                (f for f in model.model_fields.values() if f.alias == part), None
            )
            if info is None:
                return []
            model = info.annotation
        elif typing.get_origin(model) in (list, dict):
            model = typing.get_args(model)[-1]
    model = _unwrap(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Optional[X] -> X, Annotated[X, ...] -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation
