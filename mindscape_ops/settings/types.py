"""Value types of platform.yaml: durations, sizes, cron schedules, safe names.

Each is validated once, here, so a value that reaches a template is already known to be
harmless for the file it lands in (names end up in container names, paths and configs).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler
from pydantic_core import core_schema

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION_RE = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


class Duration(str):
    """A Prometheus-style duration ("30s", "1h30m", "7d"), usable as text in templates."""

    @property
    def seconds(self) -> float:
        return sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(self))

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, bool):
            raise ValueError("expected a duration like 30s, 5m, 1h or 7d")
        if isinstance(value, int | float):
            if value < 0:
                raise ValueError("a duration cannot be negative")
            value = f"{int(value)}s" if float(value).is_integer() else f"{int(value * 1000)}ms"
        if not isinstance(value, str) or not _DURATION_RE.match(value.strip()):
            raise ValueError(
                f"{value!r} is not a duration; use a number and a unit: ms, s, m, h, d, w, y (e.g. 30s, 5m, 1h)"
            )
        return cls(value.strip())

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.to_string_ser_schema(),
            json_schema_input_schema=core_schema.str_schema(),
        )


_SIZE_RE = re.compile(r"^(\d+)\s*(b|k|kb|m|mb|g|gb)?$", re.IGNORECASE)
_SIZE_FACTORS = {"b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


class Size(str):
    """A byte size ("256mb", "10m", "1gb"), kept in the user's spelling, lower-cased."""

    @property
    def bytes(self) -> int:
        number, unit = _SIZE_RE.match(self).groups()  # type: ignore[union-attr]
        return int(number) * _SIZE_FACTORS[(unit or "b").lower()]

    @property
    def nginx(self) -> str:
        """nginx wants k/m/g without the b."""
        number, unit = _SIZE_RE.match(self).groups()  # type: ignore[union-attr]
        unit = (unit or "").lower().rstrip("b")
        return f"{number}{unit}"

    @classmethod
    def parse(cls, value: Any) -> Size:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(str(value))
        if not isinstance(value, str) or not _SIZE_RE.match(value.strip()):
            raise ValueError(f"{value!r} is not a size; use a number with b, kb, mb or gb (e.g. 256mb)")
        return cls(value.strip().lower().replace(" ", ""))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse,
            serialization=core_schema.to_string_ser_schema(),
            json_schema_input_schema=core_schema.str_schema(),
        )


# -- cron -------------------------------------------------------------------------------

# Day of week 0-6 (Sunday 0): GitHub Actions' schedule does not take 7.
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
_CRON_MACROS = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually"}


def _check_cron_field(text: str, name: str, low: int, high: int) -> None:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"{name} step {step!r} must be a positive number")
        if base == "*":
            continue
        first, _, last = base.partition("-")
        for bound in (first, last) if last else (first,):
            if not bound.isdigit():
                raise ValueError(f"{name} {part!r} is not a number, range, list or step")
            if not low <= int(bound) <= high:
                raise ValueError(f"{name} {bound} is out of range {low}-{high}")
        if last and int(first) > int(last):
            raise ValueError(f"{name} range {base!r} runs backwards")


def check_cron(value: str) -> str:
    value = " ".join(value.split())
    if value in _CRON_MACROS:
        return value
    fields = value.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} is not a cron schedule: it needs 5 fields (minute hour day-of-month month day-of-week), "
            f"e.g. '0 3 * * *'"
        )
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        _check_cron_field(text, name, low, high)
    return value


Cron = Annotated[str, AfterValidator(check_cron)]


# -- names ------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# Paths reach shell steps and workflow files: nothing there may be read as syntax.
_PATH_RE = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# C0 and C1 controls, and the Unicode line/paragraph separators YAML treats as breaks
_SAFE_TEXT_BAD = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_name(value: str) -> str:
    """Project, target and role names: they become container names, file names and labels."""
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use 1-40 lower-case letters, digits, '-' or '_', starting with a letter"
        )
    return value


def check_identifier(value: str) -> str:
    """Database and user names: safe to put in SQL, connection strings and config files unquoted."""
    if not _IDENT_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid identifier: use letters, digits and '_', starting with a letter (max 63)"
        )
    return value


def check_single_line(value: str) -> str:
    """Free text that lands in configs must at least stay on its line."""
    if _SAFE_TEXT_BAD.search(value):
        raise ValueError("must be a single line of text without control characters")
    return value


def check_relative_path(value: str) -> str:
    """Output paths stay inside the project directory."""
    from pathlib import PurePosixPath

    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or not _PATH_RE.match(value):
        raise ValueError(
            f"{value!r} must be a relative path inside the project: letters, digits, '.', '_', "
            "'-' and '/', no '..', not absolute"
        )
    return value


Name = Annotated[str, AfterValidator(check_name)]
Identifier = Annotated[str, AfterValidator(check_identifier)]
Text = Annotated[str, AfterValidator(check_single_line)]
RelativePath = Annotated[str, AfterValidator(check_relative_path)]


def matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    """A validator: the value must match `pattern`; the error names `what` it should be."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


EnvName = Annotated[str, matching(re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$"), "an environment variable name (A-Z, 0-9, _)")]
