"""Opening a project: which platform files, loaded and validated, and its workspace."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mindscape_ops.workspace.store import Workspace

if TYPE_CHECKING:  # the model is loaded only by open_project: the no-op `up` never needs it
    from mindscape_ops.config import LoadedPlatform

DEFAULT_FILE = "platform.yaml"


def platform_files(files: Sequence[Path] | None) -> list[Path]:
    """-f files, else $MINDSCAPE_FILE (space- or colon-separated, like COMPOSE_FILE), else the
    platform.yaml of the current folder or its nearest parent, as git finds its repository."""
    if files:
        return list(files)
    from_env = os.environ.get("MINDSCAPE_FILE", "").replace(os.pathsep, " ").split()
    return [Path(f) for f in from_env] or [find_platform_file(Path.cwd())]


def find_platform_file(start: Path) -> Path:
    """`start`/platform.yaml or the nearest parent's; ./platform.yaml when there is none (the
    error then names the file a user would expect)."""
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_FILE
        if candidate.is_file():
            return candidate if folder != start else Path(DEFAULT_FILE)
    return Path(DEFAULT_FILE)


@dataclass(frozen=True)
class Project:
    loaded: LoadedPlatform
    workspace: Workspace

    @property
    def platform(self):
        return self.loaded.platform

    @property
    def root(self) -> Path:
        return self.loaded.root


def open_project(files: Sequence[Path] | None) -> Project:
    from mindscape_ops.config import load

    loaded = load(platform_files(files))
    return Project(loaded, Workspace(loaded.root))
