"""`mindscape init`: the starter platform.yaml, and the project's .gitignore."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mindscape_ops.adapters.files import atomic_write, cannot_write
from mindscape_ops.errors import ConfigError, UsageError
from mindscape_ops.workspace.store import ensure_gitignored


@dataclass(frozen=True)
class Created:
    path: Path
    name: str


def project_name_for(directory: Path) -> str:
    """A valid project name from a directory name: lower-case, [a-z0-9_-], starts with a letter."""
    name = re.sub(r"[^a-z0-9_-]+", "-", directory.resolve().name.lower()).strip("-_")
    name = re.sub(r"^[^a-z]+", "", name)[:40].rstrip("-_")
    return name or "platform"


def create_platform(target: Path, name: str | None, force: bool, source: Path | None = None) -> Created:
    from mindscape_ops.config.schema import with_modeline
    from mindscape_ops.render.jinja import render_template
    from mindscape_ops.settings.types import check_name

    if target.exists() and not force:
        raise UsageError(f"{target} already exists; not overwriting it", "pass --force to replace it")
    if target.is_dir():
        raise UsageError(f"{target} is a directory")
    chosen = name or project_name_for(target.parent)
    try:
        check_name(chosen)
    except ValueError as exc:
        raise UsageError(f"--name: {exc}") from None
    if source is not None:
        try:
            text = source.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--from {source}: cannot be read ({exc})") from None
        text = re.sub(r"(?m)^project:.*$", f"project: {chosen}", text, count=1)
    else:
        text = render_template("starter/platform.yaml.j2", project=chosen)
    _check(text, shown_as=str(source or target))  # before the line below: lines as in the source
    text = with_modeline(text)  # editors complete and validate it (config/schema.py)
    try:
        atomic_write(target, text)
    except OSError as exc:
        raise cannot_write(target, exc) from None
    ensure_gitignored(target.parent)
    return Created(target, chosen)


def _check(text: str, shown_as: str) -> None:
    """Validate before writing anything: a half-done init would make its rerun refuse."""
    from mindscape_ops.config.loader import load

    with tempfile.TemporaryDirectory(prefix="mindscape-init-") as folder:
        candidate = Path(folder) / "platform.yaml"
        candidate.write_text(text)
        try:
            load([candidate])
        except ConfigError as exc:
            # Only the `project:` line differs from the source, so its lines and columns hold there.
            problems = [problem.replace(str(candidate), shown_as, 1) for problem in exc.problems]
            raise ConfigError(problems, f"fix {shown_as}, then run init again; nothing was written") from None
