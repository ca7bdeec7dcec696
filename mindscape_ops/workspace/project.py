"""Opening a project: which platform files, loaded and validated, and its workspace."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mindscape_ops.workspace.store import Workspace

if TYPE_CHECKING:  # the model is loaded only by open_project: the no-op `up` never needs it
    from mindscape_ops.config.loader import LoadedPlatform

DEFAULT_FILE = "platform.yaml"
log = logging.getLogger("mindscape")


_global_files: list[Path] = []


def use_files(files: Sequence[Path] | None) -> None:
    """The CLI's global `-f` (before the command): the files every command reads unless it is
    given its own `-f`."""
    _global_files[:] = list(files or ())


def given_files(files: Sequence[Path] | None) -> list[Path] | None:
    """The command's -f files, else the global ones; None when neither was given."""
    return list(files or _global_files) or None


def platform_files(files: Sequence[Path] | None) -> list[Path]:
    """-f files (the command's, else the global ones), else $MINDSCAPE_FILE (separated by
    os.pathsep only, like COMPOSE_FILE: a path may hold spaces), else the platform.yaml of the
    current folder or its nearest parent, as git finds its repository."""
    if files:
        return list(files)
    if _global_files:
        return list(_global_files)
    from_env = [f for f in os.environ.get("MINDSCAPE_FILE", "").split(os.pathsep) if f.strip()]
    found = [Path(f) for f in from_env] or [find_platform_file(Path.cwd())]
    log.debug("platform file: %s%s", ", ".join(map(str, found)), " (from MINDSCAPE_FILE)" if from_env else "")
    return found


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
    from mindscape_ops.config.loader import load
    from mindscape_ops.workspace import collector

    loaded = load(platform_files(files))
    collector.resume()  # the start-up is over (see collector)
    return Project(loaded, Workspace(loaded.root))
