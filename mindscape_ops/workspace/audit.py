"""Reading `.mindscape/audit.log` back (`mindscape logs mindscape`). The file is ours, but
anything may have been done to it since (a line cut off by a full disk, an edit, junk), so
each line is checked like user input: a line that is not an audit entry is skipped with a
warning naming it, and nothing found in an entry is ever used as a name or a path."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("mindscape")

# the fields `Workspace.audit` writes, and the JSON types each may have
FIELDS: dict[str, tuple[type, ...]] = {
    "time": (str,),
    "user": (str,),
    "command": (str,),
    "arguments": (dict,),
    "outcome": (str,),
    "duration_s": (int, float),
}


def entry_problem(entry: Any) -> str | None:
    """Pure: why a decoded line is not an audit entry (None when it is one)."""
    if not isinstance(entry, dict):
        return f"a JSON {type(entry).__name__}, not an object"
    for name, kinds in FIELDS.items():
        value = entry.get(name)
        if name in ("time", "command") and value is None:
            return f"no {name}"
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            return f"its {name} is not a {' or '.join(k.__name__ for k in kinds)}"
    if entry_time(entry) is None:
        return "its time is not an ISO 8601 time"
    return None


def entry_time(entry: dict[str, Any]) -> float | None:
    """Pure: the entry's time as Unix seconds (a time without a zone is UTC, as written)."""
    try:
        when = datetime.fromisoformat(entry["time"])
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def parse(data: bytes) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Pure: the entries of an audit log's bytes, and (line number, why) for each line skipped."""
    entries: list[dict[str, Any]] = []
    skipped: list[tuple[int, str]] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            skipped.append((number, "not UTF-8 text"))
            continue
        except (ValueError, RecursionError):
            skipped.append((number, "not a JSON line (cut off?)"))
            continue
        problem = entry_problem(entry)
        if problem:
            skipped.append((number, problem))
        else:
            entries.append(entry)
    return entries, skipped


def read(path: Path) -> list[dict[str, Any]]:
    """The entries of an audit log (none when it does not exist); each line skipped is a warning."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning(f"{shown(path)}: cannot be read ({exc.strerror or exc}); no audit entries shown")
        return []
    entries, skipped = parse(data)
    for number, why in skipped:
        log.warning(f"{shown(path)}:{number}: skipped, {why}")
    return entries


def shown(path: Path) -> str:
    """.mindscape/audit.log, as the user knows it."""
    return f"{path.parent.name}/{path.name}"
