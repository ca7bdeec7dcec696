"""docs/platform-yaml.md against the models: every key of platform.yaml is documented, every
documented key exists, and every default and allowed value the tables state is the model's.

Key paths are written as in the doc: dots for nesting, `[]` for each item of a list, `<name>`
for a key the user chooses (a dict of models, e.g. roles), and `services.<service>` for the
keys every service inherits unchanged from `Service` (enabled, bind, health).
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from mindscape_ops.config.loader import _unwrap
from mindscape_ops.config.models import Platform
from mindscape_ops.settings.base import Service

DOC = Path(__file__).resolve().parent.parent / "docs" / "platform-yaml.md"
HEADER = ["key", "type", "default", "what it does"]
COMMON = "services.<service>"
_CODE = re.compile(r"`([^`]+)`")  # a code span; fullmatch: a cell that is one code span


# -- the models --------------------------------------------------------------------------------


def _inherited(model: type[BaseModel], name: str, info: FieldInfo) -> bool:
    """A field every service has as `Service` defines it: documented once, under `services.<service>`."""
    if not issubclass(model, Service) or name not in Service.model_fields:
        return False
    base = Service.model_fields[name]
    return info.default is not PydanticUndefined and info.default == base.default and info.annotation == base.annotation


def _walk(model: type[BaseModel], prefix: str, found: dict[str, FieldInfo]) -> None:
    for name, info in model.model_fields.items():
        key = info.alias or name
        owner = COMMON if _inherited(model, name, info) else prefix
        path = f"{owner}.{key}" if owner else key
        found[path] = info
        _walk_type(info.annotation, path, found)


def _walk_type(annotation: Any, path: str, found: dict[str, FieldInfo]) -> None:
    inner = _unwrap(annotation)
    origin = typing.get_origin(inner)
    if origin is list:
        _walk_type(typing.get_args(inner)[0], f"{path}[]", found)
    elif origin is dict:
        _walk_type(typing.get_args(inner)[1], f"{path}.<name>", found)
    elif isinstance(inner, type) and issubclass(inner, BaseModel):
        _walk(inner, path, found)


@cache
def model_keys() -> dict[str, FieldInfo]:
    """Every key path of platform.yaml, with its field."""
    found: dict[str, FieldInfo] = {}
    _walk(Platform, "", found)
    return found


def _is_section(info: FieldInfo) -> bool:
    """A plain nested mapping (security.headers): its keys have rows, it needs none itself."""
    annotation = info.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _literal_values(info: FieldInfo) -> set[str] | None:
    """The allowed values of a Literal field, or of a list of Literals."""
    inner = _unwrap(info.annotation)
    if typing.get_origin(inner) is list:
        inner = _unwrap(typing.get_args(inner)[0])
    if typing.get_origin(inner) is Literal:
        return {str(value) for value in typing.get_args(inner)}
    return None


# -- the doc -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    line: int
    cells: list[str]

    @property
    def key(self) -> str | None:
        match = _CODE.fullmatch(self.cells[0])
        return match[1] if match else None


@dataclass(frozen=True)
class Table:
    line: int
    header: list[str]
    rows: list[Row]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@cache
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@cache
def doc_tables() -> list[Table]:
    tables: list[Table] = []
    block: list[tuple[int, str]] = []
    for number, line in [*enumerate(doc_text().splitlines(), 1), (0, "")]:
        if line.startswith("|"):
            block.append((number, line))
            continue
        if block:
            (first, header), *rest = block
            rows = [Row(n, _cells(text)) for n, text in rest if not re.fullmatch(r"[|\s:-]+", text)]
            tables.append(Table(first, _cells(header), rows))
            block = []
    return tables


@cache
def doc_rows() -> dict[str, Row]:
    return {row.key: row for table in doc_tables() for row in table.rows if row.key}


def _where(row: Row) -> str:
    return f"{DOC.name}:{row.line}: {row.key}"


# -- tests -------------------------------------------------------------------------------------


def test_the_walk_sees_the_whole_model():
    keys = model_keys()
    for path in (
        "version",
        "services.postgres",
        "services.postgres.settings",
        "services.<service>.bind",
        "services.<service>.health.timeout",
        "services.prometheus.targets[].name",
        "security.auth.roles.<name>.permissions",
        "monitoring.rules[].for",
        "backups.s3.bucket",
        "paths.runbooks",
    ):
        assert path in keys, path
    assert "services.postgres.bind" not in keys and "services.redis.image" in keys
    assert len(keys) > 150


def test_tables_are_reference_tables():
    problems = []
    for table in doc_tables():
        if table.header != HEADER:
            problems.append(f"{DOC.name}:{table.line}: header {table.header}, expected {HEADER}")
        for row in table.rows:
            if len(row.cells) != len(HEADER):
                problems.append(f"{DOC.name}:{row.line}: {len(row.cells)} cells (a `|` inside a cell splits it)")
            elif row.key is None:
                problems.append(f"{DOC.name}:{row.line}: the first cell must be one `key.path`")
    assert doc_tables() and not problems, "\n".join(problems)


def test_every_key_is_in_the_doc():
    written = set(_CODE.findall(doc_text()))
    missing = [path for path in model_keys() if path not in written]
    assert not missing, f"keys of platform.yaml missing from {DOC.name}: {missing}"


def test_every_key_that_takes_a_value_has_a_row():
    rows = doc_rows()
    missing = [path for path, info in model_keys().items() if not _is_section(info) and path not in rows]
    assert not missing, f"keys without a row in a table of {DOC.name}: {missing}"


def test_every_documented_key_exists_once():
    keys = model_keys()
    seen: dict[str, int] = {}
    problems = []
    for table in doc_tables():
        for row in table.rows:
            if row.key is None:
                continue
            if row.key not in keys:
                problems.append(f"{_where(row)}: no such key in the models")
            if row.key in seen:
                problems.append(f"{_where(row)}: documented twice (also line {seen[row.key]})")
            seen.setdefault(row.key, row.line)
    assert not problems, "\n".join(problems)


def _default_problem(info: FieldInfo, cell: str) -> str | None:
    if info.is_required():
        return None if cell == "required" else f"is required, the doc says {cell!r}"
    if cell == "required":
        return "has a default, the doc says required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return None if cell.startswith("not set") else f"is not set by default, the doc says {cell!r}"
    plain = to_jsonable_python(default)
    scalar = isinstance(plain, str | int | float | bool)
    match = _CODE.fullmatch(cell)
    if match is None:
        return f"default {plain!r} must be written as one `value`, not {cell!r}" if scalar else None
    written = yaml.safe_load(match[1])
    if scalar and type(written) is not type(plain):
        return f"default {plain!r} ({type(plain).__name__}), the doc says {written!r} ({type(written).__name__})"
    try:
        value = TypeAdapter(info.rebuild_annotation()).validate_python(written)
    except ValidationError as exc:
        return f"the documented default {match[1]!r} is not a valid value: {exc.errors()[0]['msg']}"
    return None if value == default else f"default {plain!r}, the doc says {match[1]!r}"


def test_documented_defaults_are_the_models():
    keys = model_keys()
    problems = []
    for key, row in doc_rows().items():
        if key in keys and len(row.cells) == len(HEADER):
            problem = _default_problem(keys[key], row.cells[2])
            if problem:
                problems.append(f"{_where(row)}: {problem}")
    assert not problems, "\n".join(problems)


def test_documented_allowed_values_are_the_models():
    keys = model_keys()
    problems = []
    for key, row in doc_rows().items():
        allowed = _literal_values(keys[key]) if key in keys and len(row.cells) == len(HEADER) else None
        if allowed is None:
            continue
        written = set(_CODE.findall(row.cells[1]))
        if written != allowed:
            problems.append(f"{_where(row)}: allows {sorted(allowed)}, the doc lists {sorted(written)}")
    assert not problems, "\n".join(problems)


def test_the_services_block_is_what_the_service_modules_make():
    from mindscape_ops.services.reference import with_reference

    text = DOC.read_text(encoding="utf-8")
    assert with_reference(text) == text, "run scripts/docs-services"
