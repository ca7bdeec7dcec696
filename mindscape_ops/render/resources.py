"""Where the templates are: `templates/` ships in the wheel as mindscape_ops/templates; a
checkout has it at the top of the repository. A module of its own, importing nothing heavy."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # mindscape_ops/


def templates_dir() -> Path:
    for candidate in (PACKAGE_DIR / "templates", PACKAGE_DIR.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("mindscape templates are missing from this installation; reinstall mindscape")


@cache
def code_and_templates_digest() -> str:
    """A hex digest of everything that shapes our output besides the user's files: the templates
    and our own code. The version alone is not enough: an editable install changes code without
    changing it, and a cached render or no-op `up` must not outlive the code that made it."""
    return tree_digest([(templates_dir(), "*"), (PACKAGE_DIR, "*.py")])


def tree_digest(trees: Iterable[tuple[Path, str]]) -> str:
    """sha256 over the relative path and bytes of each file matching each (folder, pattern)."""
    digest = hashlib.sha256()
    for root, pattern in trees:
        for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
            digest.update(f"{root.name}/{path.relative_to(root)}".encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
