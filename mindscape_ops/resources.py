"""Where the templates are: `templates/` ships in the wheel as mindscape_ops/templates; a
checkout has it at the top of the repository. A module of its own, importing nothing heavy."""

from __future__ import annotations

from pathlib import Path


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("mindscape templates are missing from this installation; reinstall mindscape")
